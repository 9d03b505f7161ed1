export declare const SERVICES: Record<'redis' | 'mysql' | 'kafka', { port: number; compose: string }>;
export declare function isPortOpen(port: number, timeoutMs?: number): Promise<boolean>;
export declare function up(): Promise<void>;
export declare function down(): Promise<void>;
export declare function status(): Promise<string>;
