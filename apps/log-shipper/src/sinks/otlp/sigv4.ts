// AWS Signature Version 4 for OTLP requests to CloudWatch Logs (`OTLP_AWS_REGION`), with AWS's own
// packages: @smithy/signature-v4 signs, @smithy/hash-node hashes (node:crypto — a pure-JS SHA-256
// of a 1 MiB body would cost more than encoding it), and @aws-sdk/credential-providers'
// fromNodeProviderChain finds the credentials the way every AWS SDK does: environment, IRSA web
// identity token file, EKS Pod Identity, ECS/instance metadata — refreshed before they expire.
//
// These packages are loaded with import() only when a region is configured, and are kept out of
// the bundle (package.json bundleExternal): a shipper without SigV4 neither loads nor parses them
// (start-up RSS, see the commit that added this file).
//
// The compressed body is what is signed (x-amz-content-sha256 is the hash of the bytes sent, as
// AWS requires for the logs service), and every header sent except user-agent is signed.

/** What a signer adds to a request: authorization, x-amz-date, x-amz-content-sha256, token. */
export interface RequestSigner {
  sign(req: {
    url: URL;
    method: string;
    headers: Record<string, string>;
    body: Buffer;
  }): Promise<Record<string, string>>;
}

export const SIGV4_SERVICE = "logs";

/** Load the AWS packages and build a signer for `region` (service `logs`). */
export async function loadSigV4Signer(region: string): Promise<RequestSigner> {
  const [{ SignatureV4 }, { Hash }, { fromNodeProviderChain }] = await Promise.all([
    import("@smithy/signature-v4"),
    import("@smithy/hash-node"),
    import("@aws-sdk/credential-providers"),
  ]);
  const signer = new SignatureV4({
    service: SIGV4_SERVICE,
    region,
    credentials: fromNodeProviderChain(),
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: true,
  });
  return {
    async sign({ url, method, headers, body }) {
      const signed = await signer.sign({
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port !== "" ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: { ...headers, host: url.host },
        body,
      });
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(signed.headers)) {
        const name = k.toLowerCase();
        if (headers[name] === undefined) out[name] = String(v);
      }
      return out;
    },
  };
}
