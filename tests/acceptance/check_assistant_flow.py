#!/usr/bin/env python3
"""Asks svc-assist's assistant the questions of issue 16's "Done when" through the edge's one
port, with no LLM configured: native gRPC (Ask, server streaming) and REST (NDJSON).

Needs the organizer that check_race_flow.py's phase `register` wrote to --state.

1. A runner (time zone Asia/Seoul) records three runs; the organizer publishes "서울 마라톤"
   with registration opening in ten days.
2. "이번 달에 몇 km 달렸어?" — answered in Korean with this month's total from the runs.
3. "What pace do I need for a sub-4 marathon?" — 5:41 /km, in English.
4. "How far was my longest run this year?" — the longest run's distance, in English.
5. "서울 마라톤 신청은 언제 열려?" — the race's registration opening time, in Korean.
6. "What is a tempo run?" — in English, citing a knowledge-base article about tempo runs.
7. The conversation is kept (ListConversations / GetConversation), another runner's is
   NOT_FOUND, an empty question INVALID_ARGUMENT; REST streams the same kind of answer.

    python check_assistant_flow.py --addr 127.0.0.1:8080 --state race.json
"""

import argparse
import datetime
import json
import pathlib
import re
import secrets
import sys
import zoneinfo

import grpc

from mesh import Mesh
from reflected import CallFailed, Mismatch, expect

USER = "runmesh.user.v1.UserService"
RUN = "runmesh.run.v1.RunService"
RACE = "runmesh.race.v1.RaceService"
ASSIST = "runmesh.assist.v1.AssistantService"
SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def numbers(text: str) -> list[float]:
    return [float(match.replace(",", "")) for match in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


class Answer:
    def __init__(self, responses: list):
        self.text = "".join(r.text for r in responses if r.WhichOneof("event") == "text")
        starts = [r.start for r in responses if r.WhichOneof("event") == "start"]
        ends = [r.end for r in responses if r.WhichOneof("event") == "end"]
        expect(len(starts) == 1 and len(ends) == 1, f"{len(starts)} starts and {len(ends)} ends in the stream")
        self.start, self.end = starts[0], ends[0]

    def show(self) -> str:
        return self.text.replace("\n", " ")[:220]


def ask(mesh: Mesh, token: str, question: str) -> Answer:
    try:
        responses = list(mesh.stream(ASSIST, "Ask", {"question": question}, token, timeout=60))
    except grpc.RpcError as error:
        raise CallFailed("Ask", error) from None
    answer = Answer(responses)
    print(f"  Q: {question}\n  A [{answer.start.language}]: {answer.show()}")
    return answer


def run_flow(mesh: Mesh, state: dict) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    _, token = mesh.sign_up("assist", "Assisted Runner")
    mesh.call(USER, "UpdateProfile", {"time_zone": "Asia/Seoul"}, token)

    print("1. runs and a race")
    runs = [(10_000, 3), (5_500, 26), (21_100, 50)]  # metres, hours ago
    for meters, hours in runs:
        mesh.call(RUN, "CreateRun", {"run": {
            "sport": "SPORT_RUN", "title": f"{meters / 1000:.1f} km", "time_zone": "Asia/Seoul",
            "start_time": timestamp(now - datetime.timedelta(hours=hours)),
            "elapsed_time": f"{meters * 33 // 100}s", "distance_meters": meters,
            "visibility": "VISIBILITY_PRIVATE"}}, token)
    local_now = now.astimezone(SEOUL)
    month_km = sum(m for m, h in runs if (now - datetime.timedelta(hours=h)).astimezone(SEOUL).strftime("%Y-%m")
                   == local_now.strftime("%Y-%m")) / 1000
    year_longest_km = max(m for m, h in runs if (now - datetime.timedelta(hours=h)).astimezone(SEOUL).year
                          == local_now.year) / 1000
    organizer = state["organizer"]
    organizer_token = mesh.call(USER, "SignIn", {"email": organizer["email"],
                                                 "password": organizer["password"]}).tokens.access_token
    opens = (now + datetime.timedelta(days=10)).replace(second=0, microsecond=0)
    race = mesh.call(RACE, "CreateRace", {"race": {
        "name": f"서울 마라톤 {secrets.token_hex(2)}", "description": "Made by check_assistant_flow.py.",
        "region": "Seoul", "venue": "Gwanghwamun", "starts_at": timestamp(now + datetime.timedelta(days=40)),
        "registration_opens_at": timestamp(opens),
        "registration_closes_at": timestamp(now + datetime.timedelta(days=20)),
        "categories": [{"name": "Full", "distance_meters": 42_195, "capacity": 1000, "waitlist_capacity": 100,
                        "fee": {"currency_code": "KRW", "amount_minor": 80000}}]}}, organizer_token).race
    mesh.call(RACE, "PublishRace", {"race_id": race.race_id}, organizer_token)
    print(f"  {len(runs)} runs ({month_km} km this month), race {race.name!r} opening {opens.isoformat()}")

    print("2. this month's distance, in Korean")
    answer = ask(mesh, token, "이번 달에 몇 km 달렸어?")
    expect(answer.start.language == "ko", f"answered in {answer.start.language!r}")
    expect(any(abs(n - month_km) < 0.01 for n in numbers(answer.text)), f"{month_km} km is not in the answer")
    expect(any(d.available for d in answer.end.data), "the answer used no available data")

    print("3. a sub-4 marathon pace")
    answer = ask(mesh, token, "What pace do I need for a sub-4 marathon?")
    expect(answer.start.language == "en", f"answered in {answer.start.language!r}")
    expect("5:41" in answer.text, "5:41 /km (4 h over 42.195 km) is not in the answer")

    print("4. the longest run this year")
    answer = ask(mesh, token, "How far was my longest run this year?")
    expect(answer.start.language == "en", f"answered in {answer.start.language!r}")
    expect(any(abs(n - year_longest_km) < 0.01 for n in numbers(answer.text)),
           f"{year_longest_km} km is not in the answer")

    print("5. when the Seoul marathon's registration opens")
    answer = ask(mesh, token, "서울 마라톤 신청은 언제 열려?")
    expect(answer.start.language == "ko", f"answered in {answer.start.language!r}")
    expected = opens.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M")
    expect(expected in answer.text, f"the opening time {expected} (Asia/Seoul) is not in the answer")

    print("6. a tempo run, cited")
    answer = ask(mesh, token, "What is a tempo run?")
    expect(answer.start.language == "en", f"answered in {answer.start.language!r}")
    expect(len(answer.end.citations) > 0, "no citation")
    cited = " ".join(f"{c.article} {c.title} {c.heading}".lower() for c in answer.end.citations)
    expect("tempo" in cited, f"the citations do not name a tempo article: {cited}")
    print(f"  cited: {[c.article + ' § ' + c.heading for c in answer.end.citations][:3]}")

    print("7. conversations, bad input, REST")
    conversations = mesh.call(ASSIST, "ListConversations", {}, token).conversations
    expect(len(conversations) >= 1, "no conversation kept")
    kept = mesh.call(ASSIST, "GetConversation", {"conversation_id": answer.start.conversation_id}, token)
    expect(len(kept.messages) >= 2, f"{len(kept.messages)} messages kept")
    _, other = mesh.sign_up("assist-other", "Other Runner")
    refused = mesh.refused(ASSIST, "GetConversation", {"conversation_id": answer.start.conversation_id}, other)
    expect(refused.code == grpc.StatusCode.NOT_FOUND, f"another runner's conversation: {refused.describe()}")
    try:
        list(mesh.stream(ASSIST, "Ask", {"question": "   "}, token, timeout=30))
        raise Mismatch("an empty question was answered")
    except grpc.RpcError as error:
        expect(error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"an empty question: {error.code()}")
    status, body = mesh.rest("POST", "/v1/assistant:ask", token, {"question": "What is a tempo run?"})
    # A server stream over REST is NDJSON: one {"result": …} per message.
    expect(status == 200 and '"result"' in body.get("raw", ""), f"REST ask answered {status}: {body}")
    print(f"  kept {len(kept.messages)} messages; other runner NOT_FOUND; empty question INVALID_ARGUMENT; "
          f"REST {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", required=True, help="the edge's address, host:port")
    parser.add_argument("--state", required=True, type=pathlib.Path, help="check_race_flow.py's state file")
    args = parser.parse_args()
    try:
        with grpc.insecure_channel(args.addr) as channel:
            run_flow(Mesh(channel, args.addr), json.loads(args.state.read_text()))
    except (Mismatch, CallFailed) as failure:
        print(f"FAIL: {failure}")
        return 1
    print("assistant: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
