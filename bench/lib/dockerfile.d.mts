/** The log-shipper stage of `dockerfile` (its text): `env` from its ENV lines, `nodeFlags` from its CMD. */
export declare function imageSettings(dockerfile: string): {
  env: Record<string, string>;
  nodeFlags: string[];
};
