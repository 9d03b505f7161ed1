export declare const NODE24_VERSION: string;
/** The path of the Node 24 binary, installed into .cache/node24 on first use. */
export declare function node24(): string;
