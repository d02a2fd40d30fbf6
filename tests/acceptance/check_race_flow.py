#!/usr/bin/env python3
"""Walks svc-race's flash-crowd registration against running runmesh servers as a foreign client
would, in two phases around a restart of the race service (issue 5's "Done when").

Learns the schema from server reflection alone (no stubs generated from runmesh's contracts, no
.proto files) and reads errors through the rich error model (`grpc-status-details-bin`).

Phase `register`:

1. An admin is created with `runmesh user create-admin` (on the database the caller's RUNMESH_*
   environment names, as the server's), signs in and grants the organizer role to a new user,
   who signs in again (roles show in freshly issued tokens only).
2. The organizer creates a race whose registration is open now, with one category of capacity
   3 and waitlist 2, and publishes it.
3. Ten runners sign up and all call Register at once, each with its own idempotency key: exactly
   3 are CONFIRMED with distinct bibs in the category's range, exactly 2 WAITLISTED (positions 1
   and 2 once written), the other 5 FAILED_PRECONDITION `SOLD_OUT`.
4. A retry with the same idempotency key returns the identical registration; another key gets
   ALREADY_EXISTS `ALREADY_REGISTERED`. ListRegistrations and GetRace agree.

It writes what phase 2 needs to --state (JSON: the race, the accounts, the registrations).

Phase `after-restart` (the race service restarted meanwhile) reads --state:

5. Everyone signs in again; every registration is still there with the same status and bib
   (ListMyRegistrations per runner, ListRegistrations as organizer and as admin); retries with
   the original keys still answer the original registrations, sold-out runners stay SOLD_OUT.
6. A confirmed runner cancels: the first waitlisted runner becomes CONFIRMED with the freed bib
   (the only one left in the range) and the other waitlisted runner moves to position 1
   (polled for up to --promotion-wait seconds).

Prints each call and what came back; exits 0 when everything holds, 1 at the first mismatch.

    python check_race_flow.py --addr 127.0.0.1:50051 --phase register --state /tmp/race.json \
        --runmesh-bin target/debug/runmesh
    python check_race_flow.py --addr 127.0.0.1:50051 --phase after-restart --state /tmp/race.json
"""

import argparse
import datetime
import ipaddress
import json
import pathlib
import secrets
import subprocess
import sys
import threading
import time

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from reflected import CallFailed, expect, Mismatch, ReflectedService, RPC_TIMEOUT_SECONDS

USER_SERVICE = "runmesh.user.v1.UserService"
RACE_SERVICE = "runmesh.race.v1.RaceService"
USER_METHODS = ("SignUp", "SignIn", "GrantRole")
RACE_METHODS = ("CreateRace", "PublishRace", "GetRace", "Register", "CancelRegistration",
                "ListMyRegistrations", "ListRegistrations")

CAPACITY = 3
WAITLIST_CAPACITY = 2
RUNNERS = 10
CONFIRMED = "REGISTRATION_STATUS_CONFIRMED"
WAITLISTED = "REGISTRATION_STATUS_WAITLISTED"
CANCELLED = "REGISTRATION_STATUS_CANCELLED"
SOLD_OUT = "SOLD_OUT"


def as_dict(message: Message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def enum_name(message: Message, field: str) -> str:
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


def show_registration(registration: dict) -> str:
    status = registration.get("status", "REGISTRATION_STATUS_UNSPECIFIED").removeprefix(
        "REGISTRATION_STATUS_")
    parts = [f"{registration.get('registration_id', '?')} {status}"]
    if "bib_number" in registration:
        parts.append(f"bib {registration['bib_number']}")
    if "waitlist_position" in registration:
        parts.append(f"position {registration['waitlist_position']}")
    return ", ".join(parts)


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def random_client_address() -> str:
    """An address from the benchmarking range (RFC 2544) for this run's x-forwarded-for, so runs
    against one long-lived server never share a client's sign-in limits."""
    network = ipaddress.ip_network("198.18.0.0/15")
    return str(network[secrets.randbelow(network.num_addresses - 2) + 1])


def new_password() -> str:
    return f"acceptance-{secrets.token_urlsafe(12)}"


class Flow:
    def __init__(self, users: ReflectedService, races: ReflectedService, state_path: pathlib.Path,
                 promotion_wait: float):
        self.users = users
        self.races = races
        self.state_path = state_path
        self.promotion_wait = promotion_wait
        self.step_number = 0

    # ------------------------------------------------------------------ calls

    def step(self, title: str) -> None:
        self.step_number += 1
        print(f"\n{self.step_number}. {title}")

    @staticmethod
    def ok(service: ReflectedService, method: str, request: dict,
           access_token: str | None = None) -> Message:
        try:
            return service.call(method, request, access_token)
        except CallFailed as failed:
            raise Mismatch(f"{method} failed: {failed.describe()}") from None

    def refused(self, label: str, method: str, request: dict, code: grpc.StatusCode, reason: str,
                access_token: str) -> CallFailed:
        """Calls RaceService `method`, expecting it to fail with `code` and ErrorInfo `reason`."""
        try:
            response = self.races.call(method, request, access_token)
        except CallFailed as failed:
            print(f"  {label}: {failed.describe()}")
            expect(failed.code == code, f"{label}: {method} answered {failed.code.name}, want {code.name}")
            expect(failed.reason == reason, f"{label}: ErrorInfo.reason is {failed.reason}, want {reason}")
            return failed
        raise Mismatch(f"{label}: {method} succeeded ({as_dict(response)}), want {code.name} {reason}")

    def sign_in(self, label: str, email: str, password: str) -> tuple[str, str]:
        """Signs in; returns (access token, user id)."""
        response = self.ok(self.users, "SignIn", {"email": email, "password": password})
        expect(bool(response.tokens.access_token), f"SignIn of {label}: no access token")
        return response.tokens.access_token, response.user.id

    def list_for_race(self, race_id: str, access_token: str) -> list[dict]:
        """Every registration of the race (all pages), in the order they were made."""
        registrations: list[dict] = []
        page_token = ""
        for _ in range(100):
            response = self.ok(self.races, "ListRegistrations",
                               {"race_id": race_id, "page_size": 1000, "page_token": page_token},
                               access_token)
            registrations.extend(as_dict(item) for item in response.registrations)
            page_token = response.next_page_token
            if not page_token:
                return registrations
        raise Mismatch("ListRegistrations: still a next_page_token after 100 pages")

    def my_registrations(self, race_id: str, access_token: str) -> list[dict]:
        """The caller's registrations for this race (all pages of ListMyRegistrations)."""
        registrations: list[dict] = []
        page_token = ""
        for _ in range(100):
            response = self.ok(self.races, "ListMyRegistrations",
                               {"page_size": 100, "page_token": page_token}, access_token)
            registrations.extend(as_dict(item) for item in response.registrations
                                 if item.race_id == race_id)
            page_token = response.next_page_token
            if not page_token:
                return registrations
        raise Mismatch("ListMyRegistrations: still a next_page_token after 100 pages")

    def wait_for(self, label: str, probe) -> object:
        """Calls `probe` until it returns (result, None) or the promotion wait ends; `probe`
        returns (None, why-not) while the condition does not hold."""
        deadline = time.monotonic() + self.promotion_wait
        while True:
            result, why_not = probe()
            if why_not is None:
                return result
            if time.monotonic() >= deadline:
                raise Mismatch(f"{label}: still not so after {self.promotion_wait:g}s: {why_not}")
            time.sleep(0.2)

    # ------------------------------------------------------------------ phase 1

    def create_admin(self, runmesh_bin: str, email: str, password: str) -> None:
        command = [runmesh_bin, "user", "create-admin", "--email", email, "--password", password]
        print(f"  $ {runmesh_bin} user create-admin --email {email} --password …")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Mismatch(f"runmesh user create-admin could not run: {error}") from None
        output = (done.stdout + done.stderr).strip()
        for line in output.splitlines()[-5:]:
            print(f"    {line}")
        expect(done.returncode == 0, f"runmesh user create-admin exited {done.returncode}: {output[-2000:]}")

    def run_register(self, runmesh_bin: str) -> None:
        nonce = secrets.token_hex(4)
        state: dict = {"nonce": nonce}

        self.step("an admin (runmesh user create-admin) makes an organizer")
        admin = {"email": f"race-admin.{nonce}@example.com", "password": new_password()}
        self.create_admin(runmesh_bin, admin["email"], admin["password"])
        admin_token, admin["user_id"] = self.sign_in("admin", admin["email"], admin["password"])
        print(f"  admin signed in: {admin['user_id']}")
        organizer = {"email": f"race-organizer.{nonce}@example.com", "password": new_password()}
        signed_up = self.ok(self.users, "SignUp", {**organizer, "display_name": "Acceptance Organizer"})
        organizer["user_id"] = signed_up.user.id
        print(f"  organizer signed up: {organizer['user_id']}")
        granted = self.ok(self.users, "GrantRole",
                          {"user_id": organizer["user_id"], "role": "ROLE_ORGANIZER"}, admin_token).user
        role_enum = granted.DESCRIPTOR.fields_by_name["roles"].enum_type
        roles = [role_enum.values_by_number[number].name for number in granted.roles]
        print(f"  GrantRole ROLE_ORGANIZER: roles now {roles}")
        expect("ROLE_ORGANIZER" in roles, f"GrantRole: the user's roles are {roles}, want ROLE_ORGANIZER among them")
        organizer_token, _ = self.sign_in("organizer", organizer["email"], organizer["password"])
        print("  organizer signed in again (the role shows in the new token)")
        state["admin"], state["organizer"] = admin, organizer

        self.step("the organizer creates and publishes a race, registration open now")
        now = datetime.datetime.now(datetime.timezone.utc)
        race_request = {
            "name": f"Acceptance Flash Crowd 10K {nonce}",
            "description": "A race with a tiny category, made by check_race_flow.py.",
            "region": "Seoul",
            "venue": "Yeouido Hangang Park",
            "starts_at": timestamp(now + datetime.timedelta(days=30)),
            "registration_opens_at": timestamp(now - datetime.timedelta(minutes=1)),
            "registration_closes_at": timestamp(now + datetime.timedelta(hours=1)),
            "categories": [{"name": "10K", "distance_meters": 10_000, "capacity": CAPACITY,
                            "waitlist_capacity": WAITLIST_CAPACITY,
                            "fee": {"currency_code": "KRW", "amount_minor": 30000}}],
        }
        race = self.ok(self.races, "CreateRace", {"race": race_request}, organizer_token).race
        print(f"  CreateRace: {race.race_id} {race.name!r}, status {enum_name(race, 'status')}, "
              f"registration {enum_name(race, 'registration_state')}")
        expect(bool(race.race_id), "CreateRace: the race has no race_id")
        expect(race.organizer_id == organizer["user_id"],
               f"CreateRace: organizer_id is {race.organizer_id!r}, want the organizer {organizer['user_id']!r}")
        expect(len(race.categories) == 1, f"CreateRace: {len(race.categories)} categories, want 1")
        category = race.categories[0]
        expect(bool(category.category_id), "CreateRace: the category has no category_id")
        expect(category.capacity == CAPACITY and category.waitlist_capacity == WAITLIST_CAPACITY,
               f"CreateRace: category capacity {category.capacity}/{category.waitlist_capacity}, "
               f"want {CAPACITY}/{WAITLIST_CAPACITY}")
        print(f"  category {category.category_id} {category.name!r}: capacity {category.capacity}, "
              f"waitlist {category.waitlist_capacity}, bibs from {category.first_bib}")
        published = self.ok(self.races, "PublishRace", {"race_id": race.race_id}, organizer_token).race
        status_name, state_name = enum_name(published, "status"), enum_name(published, "registration_state")
        print(f"  PublishRace: status {status_name}, registration {state_name}")
        expect(status_name == "RACE_STATUS_PUBLISHED", f"PublishRace: status is {status_name}")
        expect(state_name == "REGISTRATION_STATE_OPEN", f"PublishRace: registration_state is {state_name}, want OPEN")
        state["race_id"], state["category_id"] = race.race_id, category.category_id
        state["first_bib"] = category.first_bib
        self.save(state)  # the race so far, for whoever cleans up after a failure

        self.step(f"{RUNNERS} runners sign up, then all register at once")
        runners = []
        for index in range(RUNNERS):
            runner = {"email": f"race-runner{index}.{nonce}@example.com", "password": new_password()}
            signed_up = self.ok(self.users, "SignUp", {**runner, "display_name": f"Flash Runner {index}"})
            runner["user_id"] = signed_up.user.id
            runner["token"] = signed_up.tokens.access_token
            runner["idempotency_key"] = f"accept-{nonce}-{index}-{secrets.token_hex(8)}"
            runners.append(runner)
        print(f"  signed up {len(runners)} runners")
        outcomes = self.register_all_at_once(state["race_id"], state["category_id"], runners)
        confirmed, waitlisted, sold_out = [], [], []
        for runner, outcome in zip(runners, outcomes):
            if isinstance(outcome, CallFailed):
                print(f"  {runner['email']}: {outcome.describe()}")
                expect(outcome.code == grpc.StatusCode.FAILED_PRECONDITION and outcome.reason == SOLD_OUT,
                       f"Register of {runner['email']}: {outcome.describe()}, want FAILED_PRECONDITION {SOLD_OUT}")
                runner["outcome"], runner["registration"] = SOLD_OUT, None
                sold_out.append(runner)
                continue
            registration = as_dict(outcome)
            print(f"  {runner['email']}: {show_registration(registration)}")
            self.check_own(f"Register of {runner['email']}", registration, state, runner)
            runner["outcome"], runner["registration"] = registration.get("status"), registration
            if registration.get("status") == CONFIRMED:
                confirmed.append(runner)
            elif registration.get("status") == WAITLISTED:
                waitlisted.append(runner)
            else:
                raise Mismatch(f"Register of {runner['email']}: status {registration.get('status')}, "
                               "want CONFIRMED or WAITLISTED")
        print(f"  {len(confirmed)} CONFIRMED, {len(waitlisted)} WAITLISTED, {len(sold_out)} SOLD_OUT")
        expect(len(confirmed) == CAPACITY, f"{len(confirmed)} runners are CONFIRMED, want exactly {CAPACITY}")
        expect(len(waitlisted) == WAITLIST_CAPACITY,
               f"{len(waitlisted)} runners are WAITLISTED, want exactly {WAITLIST_CAPACITY}")
        expect(len(sold_out) == RUNNERS - CAPACITY - WAITLIST_CAPACITY,
               f"{len(sold_out)} runners got SOLD_OUT, want {RUNNERS - CAPACITY - WAITLIST_CAPACITY}")
        self.check_bibs("Register answers", [runner["registration"] for runner in confirmed], state)
        answered = sorted(runner["registration"].get("waitlist_position", 0) for runner in waitlisted)
        # The contract lets a position answered during the flood be too small by the runners
        # admitted just before whose rows were still being written; the list below is exact.
        expect(all(1 <= position <= WAITLIST_CAPACITY for position in answered),
               f"Register answered waitlist positions {answered}, want each within 1..{WAITLIST_CAPACITY}")
        if answered != list(range(1, WAITLIST_CAPACITY + 1)):
            print(f"  note: Register answered waitlist positions {answered} during the flood "
                  "(allowed by the contract; ListRegistrations must be exact)")

        self.step("retries: the same idempotency key returns the same registration, another key is refused")
        for runner in confirmed + waitlisted:
            again = as_dict(self.ok(self.races, "Register", {
                "race_id": state["race_id"], "category_id": state["category_id"],
                "idempotency_key": runner["idempotency_key"]}, runner["token"]).registration)
            print(f"  same key, {runner['email']}: {show_registration(again)}")
            expect(again == runner["registration"],
                   f"retry with the same key for {runner['email']} answered {again}, want the original "
                   f"{runner['registration']}")
            self.refused(f"another key, {runner['email']}", "Register", {
                "race_id": state["race_id"], "category_id": state["category_id"],
                "idempotency_key": f"other-{secrets.token_hex(8)}"},
                grpc.StatusCode.ALREADY_EXISTS, "ALREADY_REGISTERED", runner["token"])

        self.step("ListRegistrations (organizer) and GetRace agree")
        listed = self.list_for_race(state["race_id"], organizer_token)
        self.check_listed("ListRegistrations as organizer", listed, confirmed, waitlisted, state)
        for runner in waitlisted:
            runner["registration"] = next(item for item in listed
                                          if item["registration_id"] == runner["registration"]["registration_id"])
        self.check_availability(state["race_id"], confirmed=CAPACITY, waitlisted=WAITLIST_CAPACITY)

        for runner in runners:
            runner.pop("token")
        state["runners"] = runners
        self.save(state)
        print(f"\nstate for phase after-restart written to {self.state_path}")

    def save(self, state: dict) -> None:
        try:
            self.state_path.write_text(json.dumps(state, indent=2) + "\n")
        except OSError as error:
            raise Mismatch(f"cannot write the state file {self.state_path}: {error}") from None

    def register_all_at_once(self, race_id: str, category_id: str, runners: list[dict]) -> list:
        """Register for every runner from its own thread, released together by a barrier."""
        outcomes: list = [None] * len(runners)
        barrier = threading.Barrier(len(runners))

        def attempt(index: int) -> None:
            runner = runners[index]
            request = {"race_id": race_id, "category_id": category_id,
                       "idempotency_key": runner["idempotency_key"]}
            try:
                barrier.wait(timeout=30)
                outcomes[index] = self.races.call("Register", request, runner["token"]).registration
            except CallFailed as failed:
                outcomes[index] = failed
            except Exception as error:  # a thread's failure is reported by the main thread
                outcomes[index] = error

        threads = [threading.Thread(target=attempt, args=(index,), name=f"runner-{index}")
                   for index in range(len(runners))]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=RPC_TIMEOUT_SECONDS + 35)
        print(f"  {len(runners)} concurrent Register calls answered in {time.monotonic() - started:.2f}s")
        for runner, thread, outcome in zip(runners, threads, outcomes):
            expect(not thread.is_alive(), f"Register of {runner['email']} did not return")
            if outcome is None or not isinstance(outcome, (Message, CallFailed)):
                raise Mismatch(f"Register of {runner['email']} failed in the client: {outcome!r}")
        return outcomes

    # ------------------------------------------------------------------ checks shared by both phases

    @staticmethod
    def check_own(label: str, registration: dict, state: dict, runner: dict) -> None:
        expect(bool(registration.get("registration_id")), f"{label}: no registration_id")
        expect(registration.get("race_id") == state["race_id"],
               f"{label}: race_id is {registration.get('race_id')!r}, want {state['race_id']!r}")
        expect(registration.get("category_id") == state["category_id"],
               f"{label}: category_id is {registration.get('category_id')!r}, want {state['category_id']!r}")
        expect(registration.get("user_id") == runner["user_id"],
               f"{label}: user_id is {registration.get('user_id')!r}, want {runner['user_id']!r}")
        status = registration.get("status")
        if status == CONFIRMED:
            expect("bib_number" in registration, f"{label}: CONFIRMED without a bib_number")
            expect("waitlist_position" not in registration, f"{label}: CONFIRMED with a waitlist_position")
        elif status == WAITLISTED:
            expect("waitlist_position" in registration, f"{label}: WAITLISTED without a waitlist_position")
            expect("bib_number" not in registration, f"{label}: WAITLISTED with a bib_number")
        elif status == CANCELLED:
            expect("bib_number" not in registration and "waitlist_position" not in registration,
                   f"{label}: CANCELLED but still holds {registration}")

    @staticmethod
    def check_bibs(label: str, registrations: list[dict], state: dict) -> None:
        bibs = [registration.get("bib_number") for registration in registrations]
        allowed = range(state["first_bib"], state["first_bib"] + CAPACITY)
        expect(len(set(bibs)) == len(bibs), f"{label}: bib numbers {bibs} are not distinct")
        expect(all(bib in allowed for bib in bibs),
               f"{label}: bib numbers {bibs}, want each within {allowed.start}..{allowed.stop - 1}")
        print(f"  {label}: bibs {sorted(bibs)}, distinct, within {allowed.start}..{allowed.stop - 1}")

    def check_listed(self, label: str, listed: list[dict], confirmed: list[dict], waitlisted: list[dict],
                     state: dict) -> None:
        """`listed` holds exactly the runners' registrations: same ids, statuses and bibs; the
        waitlisted ones at positions 1, 2, …"""
        for item in listed:
            print(f"  {label}: {show_registration(item)}")
        by_id = {item.get("registration_id"): item for item in listed}
        want_ids = {runner["registration"]["registration_id"] for runner in confirmed + waitlisted}
        expect(set(by_id) == want_ids and len(listed) == len(want_ids),
               f"{label}: lists {sorted(by_id)}, want exactly {sorted(want_ids)}")
        for runner in confirmed:
            item = by_id[runner["registration"]["registration_id"]]
            self.check_own(label, item, state, runner)
            expect(item.get("status") == CONFIRMED and item.get("bib_number") == runner["registration"]["bib_number"],
                   f"{label}: {runner['email']} is {show_registration(item)}, want CONFIRMED with bib "
                   f"{runner['registration']['bib_number']}")
        waiting = [by_id[runner["registration"]["registration_id"]] for runner in waitlisted]
        for runner, item in zip(waitlisted, waiting):
            self.check_own(label, item, state, runner)
            expect(item.get("status") == WAITLISTED,
                   f"{label}: {runner['email']} is {show_registration(item)}, want WAITLISTED")
        positions = sorted(item.get("waitlist_position") for item in waiting)
        expect(positions == list(range(1, len(waiting) + 1)),
               f"{label}: waitlist positions are {positions}, want {list(range(1, len(waiting) + 1))}")
        self.check_bibs(label, [by_id[runner["registration"]["registration_id"]] for runner in confirmed], state)

    def check_availability(self, race_id: str, confirmed: int, waitlisted: int) -> None:
        want = {"capacity": CAPACITY, "confirmed": confirmed, "remaining_places": CAPACITY - confirmed,
                "waitlist_capacity": WAITLIST_CAPACITY, "waitlisted": waitlisted,
                "remaining_waitlist_places": WAITLIST_CAPACITY - waitlisted}

        def probe():
            response = self.ok(self.races, "GetRace", {"race_id": race_id})
            if len(response.availability) != 1:
                return None, f"GetRace lists {len(response.availability)} categories' availability, want 1"
            got = {field: getattr(response.availability[0], field) for field in want}
            return (got, None) if got == want else (None, f"GetRace availability is {got}, want {want}")

        got = self.wait_for("GetRace availability", probe)
        print(f"  GetRace availability: {got}")

    # ------------------------------------------------------------------ phase 2

    def run_after_restart(self) -> None:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as error:
            raise Mismatch(f"cannot read the state of phase register from {self.state_path}: {error}") from None
        for key in ("race_id", "category_id", "first_bib", "admin", "organizer", "runners"):
            expect(key in state, f"the state file {self.state_path} lacks {key!r}: run phase register first")
        race_id = state["race_id"]
        runners = state["runners"]
        confirmed = [runner for runner in runners if runner["outcome"] == CONFIRMED]
        waitlisted = [runner for runner in runners if runner["outcome"] == WAITLISTED]
        sold_out = [runner for runner in runners if runner["outcome"] == SOLD_OUT]
        expect(len(confirmed) == CAPACITY and len(waitlisted) == WAITLIST_CAPACITY,
               f"the state file holds {len(confirmed)} confirmed and {len(waitlisted)} waitlisted runners, "
               f"want {CAPACITY} and {WAITLIST_CAPACITY}: did phase register pass?")
        waitlisted.sort(key=lambda runner: runner["registration"]["waitlist_position"])

        self.step("everyone signs in again; every registration survived the restart")
        admin_token, _ = self.sign_in("admin", state["admin"]["email"], state["admin"]["password"])
        organizer_token, _ = self.sign_in("organizer", state["organizer"]["email"], state["organizer"]["password"])
        for runner in runners:
            runner["token"], user_id = self.sign_in(runner["email"], runner["email"], runner["password"])
            expect(user_id == runner["user_id"], f"SignIn of {runner['email']}: user id {user_id}, want {runner['user_id']}")
        print(f"  admin, organizer and {len(runners)} runners signed in")
        for runner in runners:
            mine = self.my_registrations(race_id, runner["token"])
            if runner["registration"] is None:
                expect(not mine, f"ListMyRegistrations of {runner['email']} (SOLD_OUT before): {mine}, want none")
                print(f"  ListMyRegistrations {runner['email']}: none (was SOLD_OUT)")
                continue
            expect(len(mine) == 1, f"ListMyRegistrations of {runner['email']}: {len(mine)} registrations "
                                   f"for the race, want 1: {mine}")
            got, was = mine[0], runner["registration"]
            print(f"  ListMyRegistrations {runner['email']}: {show_registration(got)}")
            self.check_own(f"ListMyRegistrations of {runner['email']}", got, state, runner)
            for field in ("registration_id", "status", "bib_number", "waitlist_position", "created_at"):
                expect(got.get(field) == was.get(field),
                       f"ListMyRegistrations of {runner['email']}: {field} is {got.get(field)!r}, "
                       f"before the restart {was.get(field)!r}")
        for label, token in (("ListRegistrations as organizer", organizer_token),
                             ("ListRegistrations as admin", admin_token)):
            self.check_listed(label, self.list_for_race(race_id, token), confirmed, waitlisted, state)
        self.check_availability(race_id, confirmed=CAPACITY, waitlisted=WAITLIST_CAPACITY)

        self.step("retries after the restart: original keys answer the original registrations")
        for runner in confirmed + waitlisted:
            again = as_dict(self.ok(self.races, "Register", {
                "race_id": race_id, "category_id": state["category_id"],
                "idempotency_key": runner["idempotency_key"]}, runner["token"]).registration)
            print(f"  same key, {runner['email']}: {show_registration(again)}")
            for field in ("registration_id", "status", "bib_number", "created_at"):
                expect(again.get(field) == runner["registration"].get(field),
                       f"retry after the restart for {runner['email']}: {field} is {again.get(field)!r}, "
                       f"want {runner['registration'].get(field)!r}")
        for runner in sold_out[:2]:
            self.refused(f"sold-out runner {runner['email']} again", "Register", {
                "race_id": race_id, "category_id": state["category_id"],
                "idempotency_key": runner["idempotency_key"]},
                grpc.StatusCode.FAILED_PRECONDITION, SOLD_OUT, runner["token"])

        self.step("a confirmed runner cancels: the first waitlisted runner takes the place")
        leaving = confirmed[0]
        freed_bib = leaving["registration"]["bib_number"]
        cancelled = as_dict(self.ok(self.races, "CancelRegistration",
                                              {"registration_id": leaving["registration"]["registration_id"]},
                                              leaving["token"]).registration)
        print(f"  CancelRegistration {leaving['email']} (bib {freed_bib}): {show_registration(cancelled)}")
        expect(cancelled.get("status") == CANCELLED,
               f"CancelRegistration answered {show_registration(cancelled)}, want CANCELLED")
        self.check_own("CancelRegistration", cancelled, state, leaving)
        first, second = waitlisted
        staying = confirmed[1:]

        def promoted():
            listed = {item["registration_id"]: item for item in self.list_for_race(race_id, organizer_token)}
            head = listed.get(first["registration"]["registration_id"], {})
            if head.get("status") != CONFIRMED:
                return None, f"the first waitlisted runner {first['email']} is {show_registration(head)}"
            return listed, None

        listed = self.wait_for("promotion of the first waitlisted runner", promoted)
        for item in listed.values():
            print(f"  ListRegistrations: {show_registration(item)}")
        gone = listed[leaving["registration"]["registration_id"]]
        expect(gone.get("status") == CANCELLED and "bib_number" not in gone,
               f"the cancelled registration is listed as {show_registration(gone)}, want CANCELLED without a bib")
        head = listed[first["registration"]["registration_id"]]
        self.check_own("the promoted registration", head, state, first)
        now_confirmed = [listed[runner["registration"]["registration_id"]] for runner in staying] + [head]
        for item in now_confirmed:
            expect(item.get("status") == CONFIRMED, f"{show_registration(item)} should still be CONFIRMED")
        for runner in staying:
            item = listed[runner["registration"]["registration_id"]]
            expect(item.get("bib_number") == runner["registration"]["bib_number"],
                   f"{runner['email']} now has bib {item.get('bib_number')}, had {runner['registration']['bib_number']}")
        # Three bibs, distinct, within a range of three: the promoted runner holds the freed one.
        self.check_bibs("confirmed after the promotion", now_confirmed, state)
        expect(head.get("bib_number") == freed_bib,
               f"the promoted runner got bib {head.get('bib_number')}, want the freed bib {freed_bib}")
        print(f"  {first['email']} promoted to CONFIRMED with the freed bib {freed_bib}")
        next_in_line = listed[second["registration"]["registration_id"]]
        expect(next_in_line.get("status") == WAITLISTED and next_in_line.get("waitlist_position") == 1,
               f"the second waitlisted runner is {show_registration(next_in_line)}, want WAITLISTED at position 1")
        print(f"  {second['email']} is now WAITLISTED at position 1")

        mine = self.my_registrations(race_id, first["token"])
        expect(len(mine) == 1 and mine[0].get("status") == CONFIRMED and mine[0].get("bib_number") == freed_bib,
               f"ListMyRegistrations of the promoted runner: {mine}, want CONFIRMED with bib {freed_bib}")
        mine = self.my_registrations(race_id, second["token"])
        expect(len(mine) == 1 and mine[0].get("status") == WAITLISTED and mine[0].get("waitlist_position") == 1,
               f"ListMyRegistrations of the next runner in line: {mine}, want WAITLISTED at position 1")
        mine = self.my_registrations(race_id, leaving["token"])
        expect(len(mine) == 1 and mine[0].get("status") == CANCELLED,
               f"ListMyRegistrations of the runner who cancelled: {mine}, want CANCELLED")
        print("  ListMyRegistrations of all three agrees")
        self.check_availability(race_id, confirmed=CAPACITY, waitlisted=WAITLIST_CAPACITY - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="gRPC address of RaceService, host:port")
    parser.add_argument("--user-addr", metavar="HOST:PORT",
                        help="gRPC address of UserService when it runs elsewhere (default: --addr)")
    parser.add_argument("--phase", required=True, choices=("register", "after-restart"))
    parser.add_argument("--state", required=True, type=pathlib.Path, metavar="PATH",
                        help="JSON file phase register writes and phase after-restart reads")
    parser.add_argument("--runmesh-bin", default="runmesh", metavar="PATH",
                        help="the runmesh binary for `user create-admin` (phase register; it finds "
                             "svc-user's database through the inherited RUNMESH_* environment)")
    parser.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the servers to accept connections")
    parser.add_argument("--promotion-wait", type=float, default=10.0, metavar="SECONDS",
                        help="how long changes that may settle in the background may take")
    args = parser.parse_args()

    user_addr = args.user_addr or args.addr
    channels = {args.addr: grpc.insecure_channel(args.addr)}
    if user_addr not in channels:
        channels[user_addr] = grpc.insecure_channel(user_addr)
    try:
        for addr, channel in channels.items():
            try:
                grpc.channel_ready_future(channel).result(timeout=args.wait)
            except grpc.FutureTimeoutError:
                print(f"FAIL: no gRPC server answered on {addr} within {args.wait:g}s")
                return 1
        print(f"race service {args.addr}, user service {user_addr}, phase {args.phase}")
        flow: Flow | None = None
        try:
            client = random_client_address()
            flow = Flow(ReflectedService(channels[user_addr], USER_SERVICE, USER_METHODS, client),
                        ReflectedService(channels[args.addr], RACE_SERVICE, RACE_METHODS, client),
                        args.state, args.promotion_wait)
            if args.phase == "register":
                flow.run_register(args.runmesh_bin)
            else:
                flow.run_after_restart()
        except (Mismatch, CallFailed) as failure:
            where = f" in step {flow.step_number}" if flow else ""
            print(f"\nrace flow check ({args.phase}) FAILED{where}: {failure}")
            return 1
        except grpc.RpcError as error:
            print(f"\nrace flow check ({args.phase}) FAILED: reflection call failed: "
                  f"{error.code().name} {error.details()}")
            return 1
    finally:
        for channel in channels.values():
            channel.close()
    print(f"\nrace flow check ({args.phase}) OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
