// named-placeholders ships no types; it is the converter mysql2 itself uses.
declare module 'named-placeholders' {
  type Compiler = (query: string, parameters?: Record<string, unknown>) => [string, unknown[]?];
  export default function createCompiler(options?: { placeholder?: string; cache?: number | false }): Compiler;
}
