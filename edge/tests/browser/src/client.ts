// What the test page runs: UserService with the generated client, as a web app would, over
// gRPC-web (the default) or the Connect protocol in JSON or binary. Exposed as
// `window.runmesh.run(edgeUrl, email, password, protocol?)`.
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { Role, UserService } from "../gen/runmesh/user/v1/user_pb";

type Protocol = "grpc-web" | "connect-json" | "connect-proto";

function transport(baseUrl: string, protocol: Protocol): Transport {
  switch (protocol) {
    case "connect-json":
      return createConnectTransport({ baseUrl, useBinaryFormat: false });
    case "connect-proto":
      return createConnectTransport({ baseUrl, useBinaryFormat: true });
    default:
      return createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
  }
}

type Outcome = {
  ok: boolean;
  email?: string;
  roles?: string[];
  anonymousCode?: string;
  anonymousReason?: string;
  duplicateCode?: string;
  duplicateDetails?: string[];
  error?: string;
  code?: string;
};

async function run(
  edgeUrl: string,
  email: string,
  password: string,
  protocol: Protocol = "grpc-web",
): Promise<Outcome> {
  const client = createClient(UserService, transport(edgeUrl, protocol));
  try {
    const signedUp = await client.signUp({ email, password, displayName: "Browser" });
    const token = signedUp.tokens?.accessToken ?? "";
    // With a deadline, which travels as grpc-timeout or connect-timeout-ms.
    const me = await client.getMe(
      {},
      { headers: { authorization: `Bearer ${token}` }, timeoutMs: 10_000 },
    );
    // The same call without a token: the browser must be able to read the error status.
    let anonymousCode: string | undefined;
    let anonymousReason: string | undefined;
    try {
      await client.getMe({});
    } catch (error) {
      const connectError = ConnectError.from(error);
      anonymousCode = Code[connectError.code];
      anonymousReason = connectError.rawMessage;
    }
    // The same account again: an error with rich details, which the client can read.
    let duplicateCode: string | undefined;
    let duplicateDetails: string[] | undefined;
    try {
      await client.signUp({ email, password, displayName: "Browser" });
    } catch (error) {
      const connectError = ConnectError.from(error);
      duplicateCode = Code[connectError.code];
      duplicateDetails = connectError.details.map((detail) =>
        "desc" in detail ? detail.desc.typeName : detail.type,
      );
    }
    return {
      ok: true,
      email: me.user?.email,
      roles: me.user?.roles.map((role) => Role[role]),
      anonymousCode,
      anonymousReason,
      duplicateCode,
      duplicateDetails,
    };
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { ok: false, error: connectError.rawMessage, code: Code[connectError.code] };
  }
}

(window as unknown as { runmesh: { run: typeof run } }).runmesh = { run };
