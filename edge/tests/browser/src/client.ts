// What the test page runs: UserService over gRPC-web with the generated client, as a web app
// would. Exposed as `window.runmesh.run(edgeUrl, email, password)`.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Role, UserService } from "../gen/runmesh/user/v1/user_pb";

type Outcome = {
  ok: boolean;
  email?: string;
  roles?: string[];
  anonymousCode?: string;
  anonymousReason?: string;
  error?: string;
  code?: string;
};

async function run(edgeUrl: string, email: string, password: string): Promise<Outcome> {
  const transport = createGrpcWebTransport({ baseUrl: edgeUrl, useBinaryFormat: true });
  const client = createClient(UserService, transport);
  try {
    const signedUp = await client.signUp({ email, password, displayName: "Browser" });
    const token = signedUp.tokens?.accessToken ?? "";
    const me = await client.getMe({}, { headers: { authorization: `Bearer ${token}` } });
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
    return {
      ok: true,
      email: me.user?.email,
      roles: me.user?.roles.map((role) => Role[role]),
      anonymousCode,
      anonymousReason,
    };
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { ok: false, error: connectError.rawMessage, code: Code[connectError.code] };
  }
}

(window as unknown as { runmesh: { run: typeof run } }).runmesh = { run };
