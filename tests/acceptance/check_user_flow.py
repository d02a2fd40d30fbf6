#!/usr/bin/env python3
"""Walks svc-user's account flow against a running runmesh server as a foreign client would.

Learns the schema from server reflection alone (no stubs generated from runmesh's contracts, no
.proto files) and reads errors through the rich error model (`grpc-status-details-bin`):

1. SignUp returns the user and tokens; GetMe with the access token returns the same user.
2. SignIn returns tokens; UpdateProfile changes the profile; GetMe shows the change.
3. RefreshToken rotates the pair; replaying the spent refresh token is refused and revokes the
   whole session, so the new refresh token and access token are refused as well.
4. SignOut ends one session: its refresh token is refused, other sessions live on.
5. Bad input is refused with the right status, ErrorInfo reason and BadRequest field, and
   repeated failed sign-ins end in RESOURCE_EXHAUSTED with RetryInfo.
6. ChangePassword revokes the other sessions; DeleteAccount removes the account.

Prints each call and what came back; exits 0 when everything holds, 1 at the first mismatch.

    python check_user_flow.py --addr 127.0.0.1:50051
"""

import argparse
import ipaddress
import secrets
import sys

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from reflected import CallFailed, expect, Mismatch, ReflectedService

USER_SERVICE = "runmesh.user.v1.UserService"
FLOW_METHODS = ("SignUp", "SignIn", "RefreshToken", "SignOut", "GetMe", "UpdateProfile",
                "ChangePassword", "DeleteAccount")


def as_dict(message: Message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def short(token: str) -> str:
    return f"{token[:12]}…({len(token)} chars)"


def show_user(user: Message) -> str:
    fields = as_dict(user)
    fields.pop("created_at", None)
    fields.pop("updated_at", None)
    return str(fields)


def show_tokens(tokens: Message) -> str:
    return (f"access {short(tokens.access_token)} until {tokens.access_token_expires_at.ToJsonString()}, "
            f"refresh {short(tokens.refresh_token)} until {tokens.refresh_token_expires_at.ToJsonString()}, "
            f"type {tokens.token_type}")


class Flow:
    def __init__(self, service: ReflectedService):
        self.service = service
        self.step_number = 0

    def step(self, title: str) -> None:
        self.step_number += 1
        print(f"\n{self.step_number}. {title}")

    def ok(self, method: str, request: dict, access_token: str | None = None) -> Message:
        try:
            response = self.service.call(method, request, access_token)
        except CallFailed as failed:
            raise Mismatch(f"{method} failed: {failed.describe()}") from None
        return response

    def refused(self, label: str, method: str, request: dict, code: grpc.StatusCode,
                reason: str | None = None, fields: tuple[str, ...] = (),
                access_token: str | None = None) -> CallFailed:
        """Calls `method`, expecting it to fail with `code`, `reason` and violations of `fields`."""
        try:
            response = self.service.call(method, request, access_token)
        except CallFailed as failed:
            print(f"  {label}: {failed.describe()}")
            expect(failed.code == code, f"{label}: {method} answered {failed.code.name}, want {code.name}")
            if reason is not None:
                expect(failed.reason == reason,
                       f"{label}: ErrorInfo.reason is {failed.reason}, want {reason}")
            for field in fields:
                expect(field in failed.violated_fields,
                       f"{label}: BadRequest names {failed.violated_fields}, want a violation of {field!r}")
            return failed
        raise Mismatch(f"{label}: {method} succeeded ({as_dict(response)}), want {code.name}")

    def check_token_pair(self, label: str, tokens: Message) -> None:
        print(f"  {label}: {show_tokens(tokens)}")
        expect(bool(tokens.access_token) and bool(tokens.refresh_token), f"{label}: a token is empty")
        expect(tokens.token_type == "Bearer", f"{label}: token_type is {tokens.token_type!r}, want 'Bearer'")
        expect(tokens.access_token.count(".") == 2, f"{label}: the access token is not a JWT")

    def run(self, max_sign_in_failures: int) -> None:
        nonce = secrets.token_hex(6)
        given_email = f"Runner.{nonce}@Example.COM"
        email = given_email.lower()
        password = f"acceptance-{secrets.token_urlsafe(12)}"

        self.step("SignUp, then GetMe with its access token")
        signed_up = self.ok("SignUp", {"email": given_email, "password": password,
                                       "display_name": "Acceptance Runner"})
        user = signed_up.user
        print(f"  SignUp user: {show_user(user)}")
        self.check_token_pair("SignUp tokens", signed_up.tokens)
        expect(bool(user.id), "SignUp: the user has no id")
        expect(user.email == email, f"SignUp: email is {user.email!r}, want it normalised to {email!r}")
        expect(user.display_name == "Acceptance Runner", f"SignUp: display_name is {user.display_name!r}")
        role_runner = user.DESCRIPTOR.fields_by_name["roles"].enum_type.values_by_name["ROLE_RUNNER"].number
        expect(list(user.roles) == [role_runner], f"SignUp: roles are {list(user.roles)}, want [ROLE_RUNNER]")
        first_session = signed_up.tokens
        me = self.ok("GetMe", {}, first_session.access_token).user
        print(f"  GetMe: {show_user(me)}")
        expect(me.id == user.id and me.email == email, "GetMe does not return the user that signed up")

        self.step("SignIn, UpdateProfile, GetMe shows the update")
        signed_in = self.ok("SignIn", {"email": email, "password": password})
        self.check_token_pair("SignIn tokens", signed_in.tokens)
        expect(signed_in.user.id == user.id, f"SignIn: user id is {signed_in.user.id!r}, want {user.id!r}")
        second_session = signed_in.tokens
        profile = {
            "display_name": "Paula Pace",
            "slack_member_id": "U012ABCDEF",
            "distance_unit": "DISTANCE_UNIT_MILES",
            "time_zone": "Europe/Berlin",
            "notification_preferences": {"race_opening": True, "registration_result": False,
                                         "achievement": True, "crew_activity": False},
        }
        updated = self.ok("UpdateProfile", profile, second_session.access_token).user
        print(f"  UpdateProfile: {show_user(updated)}")
        self.check_profile("UpdateProfile", updated, profile)
        me = self.ok("GetMe", {}, second_session.access_token).user
        print(f"  GetMe: {show_user(me)}")
        self.check_profile("GetMe after UpdateProfile", me, profile)

        self.step("RefreshToken rotates; replaying the spent refresh token kills the session")
        refreshed = self.ok("RefreshToken", {"refresh_token": second_session.refresh_token}).tokens
        self.check_token_pair("RefreshToken", refreshed)
        expect(refreshed.refresh_token != second_session.refresh_token,
               "RefreshToken returned the refresh token it was given")
        me = self.ok("GetMe", {}, refreshed.access_token).user
        print(f"  GetMe with the new access token: {me.email}")
        self.refused("replayed spent refresh token", "RefreshToken",
                     {"refresh_token": second_session.refresh_token},
                     grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
        self.refused("the new refresh token after the replay", "RefreshToken",
                     {"refresh_token": refreshed.refresh_token}, grpc.StatusCode.UNAUTHENTICATED)
        self.refused("the new access token after the replay", "GetMe", {},
                     grpc.StatusCode.UNAUTHENTICATED, access_token=refreshed.access_token)

        self.step("SignOut ends one session")
        third_session = self.ok("SignIn", {"email": email, "password": password}).tokens
        self.check_token_pair("SignIn tokens", third_session)
        signed_out = self.ok("SignOut", {"refresh_token": third_session.refresh_token})
        print(f"  SignOut: {as_dict(signed_out)}")
        expect(signed_out.revoked_sessions == 1,
               f"SignOut: revoked_sessions is {signed_out.revoked_sessions}, want 1")
        self.refused("refresh token of the signed-out session", "RefreshToken",
                     {"refresh_token": third_session.refresh_token}, grpc.StatusCode.UNAUTHENTICATED)
        self.refused("access token of the signed-out session", "GetMe", {},
                     grpc.StatusCode.UNAUTHENTICATED, access_token=third_session.access_token)
        me = self.ok("GetMe", {}, first_session.access_token).user
        print(f"  GetMe with the first session, still signed in: {me.email}")

        self.step("bad input is refused")
        self.check_bad_input(email, password, first_session.access_token)
        self.check_rate_limit(nonce, max_sign_in_failures)

        self.step("ChangePassword revokes the other sessions; DeleteAccount removes the account")
        other_device = self.ok("SignIn", {"email": email, "password": password}).tokens
        self.check_token_pair("SignIn on another device", other_device)
        new_password = f"acceptance-{secrets.token_urlsafe(12)}"
        changed = self.ok("ChangePassword", {"current_password": password, "new_password": new_password},
                          first_session.access_token)
        print(f"  ChangePassword: {as_dict(changed)}")
        expect(changed.revoked_sessions == 1,
               f"ChangePassword: revoked_sessions is {changed.revoked_sessions}, want 1 (the other device)")
        self.refused("other device's refresh token after ChangePassword", "RefreshToken",
                     {"refresh_token": other_device.refresh_token}, grpc.StatusCode.UNAUTHENTICATED)
        self.refused("other device's access token after ChangePassword", "GetMe", {},
                     grpc.StatusCode.UNAUTHENTICATED, access_token=other_device.access_token)
        me = self.ok("GetMe", {}, first_session.access_token).user
        print(f"  GetMe with the caller's session, kept: {me.email}")
        self.refused("SignIn with the old password", "SignIn", {"email": email, "password": password},
                     grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        last_session = self.ok("SignIn", {"email": email, "password": new_password}).tokens
        self.check_token_pair("SignIn with the new password", last_session)
        self.refused("DeleteAccount with a wrong password", "DeleteAccount", {"password": password},
                     grpc.StatusCode.INVALID_ARGUMENT, "WRONG_PASSWORD", ("password",),
                     access_token=first_session.access_token)
        deleted = self.ok("DeleteAccount", {"password": new_password}, first_session.access_token)
        print(f"  DeleteAccount: {as_dict(deleted)}")
        self.refused("GetMe after DeleteAccount", "GetMe", {}, grpc.StatusCode.UNAUTHENTICATED,
                     access_token=first_session.access_token)
        self.refused("SignIn after DeleteAccount", "SignIn", {"email": email, "password": new_password},
                     grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        self.refused("another session's refresh token after DeleteAccount", "RefreshToken",
                     {"refresh_token": last_session.refresh_token}, grpc.StatusCode.UNAUTHENTICATED)

    def check_profile(self, label: str, user: Message, profile: dict) -> None:
        seen = as_dict(user)
        for field, want in profile.items():
            if field == "notification_preferences":
                preferences = user.notification_preferences
                got = {name: getattr(preferences, name) for name in want}
            else:
                got = seen.get(field)
            expect(got == want, f"{label}: {field} is {got!r}, want {want!r}")

    def check_bad_input(self, email: str, password: str, access_token: str) -> None:
        invalid, unauthenticated = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED
        strong = f"acceptance-{secrets.token_urlsafe(12)}"
        fresh_email = f"runner.{secrets.token_hex(6)}@example.com"
        name = {"display_name": "Bad Input"}
        self.refused("invalid email", "SignUp", {"email": "not-an-email", "password": strong, **name},
                     invalid, "INVALID_ARGUMENT", ("email",))
        self.refused("too short password", "SignUp", {"email": fresh_email, "password": "Ab1!x", **name},
                     invalid, "INVALID_ARGUMENT", ("password",))
        self.refused("common password", "SignUp", {"email": fresh_email, "password": "password123", **name},
                     invalid, "INVALID_ARGUMENT", ("password",))
        self.refused("nothing stored after refused sign-ups", "SignIn",
                     {"email": fresh_email, "password": "password123"}, unauthenticated, "INVALID_CREDENTIALS")
        self.refused("duplicate email in other case", "SignUp",
                     {"email": email.upper(), "password": strong, **name},
                     grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN", ("email",))
        wrong_password = self.refused("wrong password", "SignIn", {"email": email, "password": strong},
                                      unauthenticated, "INVALID_CREDENTIALS")
        unknown_email = self.refused("unknown email", "SignIn",
                                     {"email": f"nobody.{secrets.token_hex(6)}@example.com", "password": password},
                                     unauthenticated, "INVALID_CREDENTIALS")
        expect(wrong_password.message == unknown_email.message,
               f"wrong password says {wrong_password.message!r} but unknown email says {unknown_email.message!r}")
        print("  wrong password and unknown email: same status, reason and message")
        self.refused("bad Slack member id", "UpdateProfile", {"slack_member_id": "not-a-slack-id"},
                     invalid, "INVALID_ARGUMENT", ("slack_member_id",), access_token=access_token)
        self.refused("GetMe without a token", "GetMe", {}, unauthenticated, "TOKEN_REQUIRED")
        self.refused("GetMe with a garbage token", "GetMe", {}, unauthenticated, "TOKEN_INVALID",
                     access_token="garbage.not-a.jwt")

    def check_rate_limit(self, nonce: str, max_sign_in_failures: int) -> None:
        """Failed sign-ins for one account end in RESOURCE_EXHAUSTED with RetryInfo, and then even
        the right password is refused until the window ends."""
        email = f"limited.{nonce}@example.com"
        password = f"acceptance-{secrets.token_urlsafe(12)}"
        self.ok("SignUp", {"email": email, "password": password, "display_name": "Limited Runner"})
        print(f"  rate limit: signed up {email}, now signing in with wrong passwords")
        for attempt in range(1, max_sign_in_failures + 2):
            try:
                self.service.call("SignIn", {"email": email, "password": f"wrong-{attempt}-{nonce}"})
            except CallFailed as failed:
                print(f"  wrong password #{attempt}: {failed.describe()}")
                if failed.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    expect(failed.reason == "TOO_MANY_SIGN_IN_ATTEMPTS",
                           f"rate limit: ErrorInfo.reason is {failed.reason}, want TOO_MANY_SIGN_IN_ATTEMPTS")
                    expect(failed.retry_info is not None, "rate limit: RESOURCE_EXHAUSTED without RetryInfo")
                    delay = failed.retry_info.retry_delay.ToTimedelta()
                    expect(delay.total_seconds() > 0, f"rate limit: RetryInfo.retry_delay is {delay}")
                    break
                expect(failed.code == grpc.StatusCode.UNAUTHENTICATED,
                       f"rate limit: wrong password #{attempt} answered {failed.code.name}")
                continue
            raise Mismatch(f"rate limit: SignIn with wrong password #{attempt} succeeded")
        else:
            raise Mismatch(f"rate limit: no RESOURCE_EXHAUSTED after {max_sign_in_failures + 1} wrong passwords")
        self.refused("right password while blocked", "SignIn", {"email": email, "password": password},
                     grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_SIGN_IN_ATTEMPTS")


def random_client_address() -> str:
    """An address from the benchmarking range (RFC 2544) for this run's x-forwarded-for.

    The server counts failed sign-ins per client address too; from a loopback peer it takes the
    address from x-forwarded-for, so runs against one long-lived server do not block each other.
    """
    network = ipaddress.ip_network("198.18.0.0/15")
    return str(network[secrets.randbelow(network.num_addresses - 2) + 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="gRPC address, host:port")
    parser.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the server to accept connections")
    parser.add_argument("--max-sign-in-failures", type=int, default=5, metavar="N",
                        help="failed sign-ins per account the server allows before it rate limits")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.wait)
        except grpc.FutureTimeoutError:
            print(f"FAIL: no gRPC server answered on {args.addr} within {args.wait:g}s")
            return 1
        print(f"server {args.addr}")
        flow: Flow | None = None
        try:
            flow = Flow(ReflectedService(channel, USER_SERVICE, FLOW_METHODS, random_client_address()))
            flow.run(args.max_sign_in_failures)
        except (Mismatch, CallFailed) as failure:
            where = f" in step {flow.step_number}" if flow else ""
            print(f"\nuser flow check FAILED{where}: {failure}")
            return 1
        except grpc.RpcError as error:
            print(f"\nuser flow check FAILED: reflection call failed: {error.code().name} {error.details()}")
            return 1
    print("\nuser flow check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
