"""runmesh's Grafana dashboards: written here, generated into dashboards/*.json, and checked.

  dashboards.py --write   regenerate dashboards/*.json (scripts/check-manifests --update)
  dashboards.py --check   fail when a file differs from what this generates, or when a dashboard
                          would not load as provisioned: an unknown data source uid, a `${DS_…}`
                          input, an empty query, PromQL that does not parse (promtool), or a
                          runmesh metric that no code or rule defines.

Data sources are referenced by the fixed uids of provisioning/datasources/runmesh.yaml
(`prometheus`, `loki`), so the files load as provisioned with no import-time inputs.

The dashboards:
  runmesh.json               what an operator watches: registration openings (the gate's answers),
                             accounts, run imports, notifications and the assistant, events
                             (outbox, consumer lag), gRPC errors and latency per service, health,
                             and the logs next to them (Loki).
  autometrics-overview.json  every instrumented function: call rate, error ratio, latency.
  autometrics-function.json  one function (chosen above) in detail, and who calls it.
  autometrics-slo.json       every objective: success rate and latency against the target,
                             error budget left and burn rate (from autometrics.rules.yml).

The series of svc-run, svc-social and svc-assist are autometrics' function metrics, selected by
module (`runmesh_svc_<service>::…`), which holds in `runmesh up` (one service_name for all) and
`runmesh serve` alike; their own `runmesh_<service>_…` metrics (docs/operations.md) join the
runmesh dashboard when they exist.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "dashboards"
DATASOURCES = HERE / "provisioning" / "datasources" / "runmesh.yaml"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
SERVICES = ["user", "run", "social", "race", "assist"]
RATE = "$__rate_interval"


# ------------------------------------------------------------------ building blocks
class Layout:
    """Places panels left to right, rows of 24 units."""

    def __init__(self):
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def row(self, title):
        self.newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": self._id(),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_height
            self.x = 0
            self.row_height = 0

    def add(self, panel, w=12, h=8):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


def target(expr, legend="", ref="A", instant=False):
    item = {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        item["instant"] = True
        item["range"] = False
    return item


def timeseries(title, targets, unit="short", description="", stack=False, minimum=0):
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": minimum,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 20 if stack else 10,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                    "showPoints": "never",
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title, targets, unit="short", description="", thresholds=None, mappings=None):
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "mappings": mappings or [],
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
            "orientation": "auto",
        },
    }


def table(title, targets, description=""):
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [{"id": "merge", "options": {}}],
    }


def logs(title, expr, description=""):
    return {
        "type": "logs",
        "title": title,
        "description": description,
        "datasource": LOKI,
        "targets": [{"datasource": LOKI, "expr": expr, "refId": "A", "queryType": "range"}],
        "options": {
            "showTime": True,
            "wrapLogMessage": True,
            "sortOrder": "Descending",
            "enableLogDetails": True,
            "prettifyLogMessage": False,
            "dedupStrategy": "none",
        },
    }


def loki_timeseries(title, expr, legend, description=""):
    panel = timeseries(title, [], description=description)
    panel["datasource"] = LOKI
    panel["targets"] = [
        {"datasource": LOKI, "expr": expr, "legendFormat": legend, "refId": "A", "queryType": "range"}
    ]
    return panel


def query_variable(name, label, query, multi=True, include_all=True, all_value=".*", datasource=PROMETHEUS):
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": datasource,
        "query": {"query": query, "refId": f"{name}-query"},
        "definition": query,
        "refresh": 2,
        "includeAll": include_all,
        "allValue": all_value if include_all else None,
        "multi": multi,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "options": [],
        "hide": 0,
    }


def dashboard(uid, title, description, layout, variables=(), tags=(), links=True):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["runmesh", *tags],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {"title": "runmesh dashboards", "type": "dashboards", "tags": ["runmesh"], "asDropdown": True, "includeVars": False, "keepTime": True}
        ]
        if links
        else [],
        "templating": {"list": list(variables)},
        "panels": layout.panels,
    }


# ------------------------------------------------------------------ runmesh
def module(service):
    """autometrics' `module` label of one service's functions (its crate's modules)."""
    return f'module=~"runmesh_svc_{service}(::.*)?"'


# The gRPC handlers of every service: the `service` label derived from the module.
GRPC_BY_SERVICE = (
    'label_replace(rate({metric}{{module=~"runmesh_svc_[a-z]+::grpc"{extra}}}[{rate}]), "service", "$1", "module", "runmesh_svc_([a-z]+)::grpc")'
)


def grpc_rate(metric, extra=""):
    """rate() of a metric of every service's gRPC handlers, with a `service` label."""
    return GRPC_BY_SERVICE.format(metric=metric, extra=extra, rate=RATE)


GRPC_CALLS = grpc_rate("function_calls_total")
GRPC_ERRORS = grpc_rate("function_calls_total", ',result="error"')


def runmesh_dashboard():
    layout = Layout()

    layout.row("Registration openings (svc-race)")
    layout.add(
        timeseries(
            "Registrations per second",
            [target(f'sum by (answer) (rate(runmesh_race_register_answers_total{{answer=~"confirmed|waitlisted"}}[{RATE}]))', "{{answer}}")],
            unit="reqps",
            stack=True,
            description="Register calls that got a place or a waitlist spot. During an opening this is the flash crowd being served.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Register answers",
            [target(f"sum by (answer) (rate(runmesh_race_register_answers_total[{RATE}]))", "{{answer}}")],
            unit="reqps",
            stack=True,
            description="Every Register call by answer: sold_out, already_registered, too_many_attempts and not_open are the service working; busy and cache_unavailable are retried by clients; error is a fault (see the logs).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "The gate's answers",
            [target(f"sum by (answer) (rate(runmesh_race_gate_answers_total[{RATE}]))", "{{answer}}")],
            unit="reqps",
            stack=True,
            description="What the Redis registration gate said to each admission: admitted, sold_out, member (already holds a registration), rate_limited, not_ready (gate missing: rebuilt).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Gate rebuilds",
            [
                target("sum(runmesh_race_gate_rebuilds_running)", "running now"),
                target(f"sum by (outcome) (rate(runmesh_race_gate_rebuild_duration_seconds_count[{RATE}])) * 60", "{{outcome}} per minute", "B"),
            ],
            description="Rebuilds of the gate from the database (before an opening, or after Redis lost it). Attempts wait while one runs: alert RunmeshGateRebuildSlow past a minute.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Gate rebuild duration (p50, p99)",
            [
                target(f"histogram_quantile(0.5, sum by (le) (rate(runmesh_race_gate_rebuild_duration_seconds_bucket[{RATE}])))", "p50"),
                target(f"histogram_quantile(0.99, sum by (le) (rate(runmesh_race_gate_rebuild_duration_seconds_bucket[{RATE}])))", "p99", "B"),
            ],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Register latency (p50, p99)",
            [
                target(f'histogram_quantile(0.5, sum by (le) (rate(function_calls_duration_seconds_bucket{{module="runmesh_svc_race::grpc",function="register"}}[{RATE}])))', "p50"),
                target(f'histogram_quantile(0.99, sum by (le) (rate(function_calls_duration_seconds_bucket{{module="runmesh_svc_race::grpc",function="register"}}[{RATE}])))', "p99", "B"),
            ],
            unit="s",
            description="The race_api objective: p99 under 50 ms.",
        ),
        w=8,
    )

    layout.row("Accounts (svc-user)")
    layout.add(
        timeseries(
            "Sign-ups per second",
            [target(f"sum by (outcome) (rate(runmesh_user_sign_ups_total[{RATE}]))", "{{outcome}}")],
            unit="reqps",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Sign-ins per second",
            [target(f"sum by (outcome) (rate(runmesh_user_sign_ins_total[{RATE}]))", "{{outcome}}")],
            unit="reqps",
            stack=True,
            description="A surge of invalid_credentials or too_many_attempts is credential stuffing or a broken client.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Token refreshes per second",
            [target(f"sum by (outcome) (rate(runmesh_user_token_refreshes_total[{RATE}]))", "{{outcome}}")],
            unit="reqps",
            stack=True,
            description="reused: a spent refresh token was presented again and its session revoked (a replay, or a client bug).",
        ),
        w=8,
    )

    layout.row("Runs (svc-run)")
    layout.add(
        timeseries(
            "Run imports per second, by result",
            [target(f'sum by (function, result) (rate(function_calls_total{{module="runmesh_svc_run::grpc",function=~"import_run|start_archive_import|create_run"}}[{RATE}]))', "{{function}} {{result}}")],
            unit="reqps",
            stack=True,
            description="Files uploaded (import_run), Strava exports started (start_archive_import) and manual entries (create_run). result=error counts faults only; refusals (bad file, too large) are answers.",
        ),
        w=12,
    )
    layout.add(
        loki_timeseries(
            "Import failures by reason (logs)",
            'sum by (reason) (count_over_time({service="run"} | json | message=~"(?i).*import.*" | level=~"WARN|ERROR" | label_format reason="{{.message}}" [$__auto]))',
            "{{reason}}",
            description="svc-run's warnings and errors about imports, by message, from Loki.",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Files imported per second, by source and outcome",
            [target(f"sum by (source, outcome) (rate(runmesh_run_imports_total[{RATE}]))", "{{source}} {{outcome}}")],
            unit="reqps",
            stack=True,
            description="Activity files through ImportRun (file) and the activities of Strava exports (archive): imported once the run committed, duplicate (imported before), failed. Split by format (fit, gpx, tcx, manual, unknown) in Explore: runmesh_run_imports_total.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Import failures per second, by reason",
            [target(f"sum by (source, reason) (rate(runmesh_run_import_failures_total[{RATE}]))", "{{source}} {{reason}}")],
            unit="reqps",
            stack=True,
            description="CORRUPT_FILE, UNSUPPORTED_FILE, NO_TRACK, FILE_TOO_LARGE, TOO_MANY_POINTS: the runner's files; ANALYSIS_FAILED: a parser panicked (a bug); BAD_ARCHIVE: an export refused or unreadable; INTERNAL: a fault (see the logs).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Strava exports being imported",
            [target("sum(runmesh_run_archive_imports_running)", "running now")],
            description="Exports svc-run's processes are importing in the background (resumed after a restart).",
        ),
        w=8,
    )

    layout.row("Crews (svc-social)")
    layout.add(
        timeseries(
            "Posts per second, by outcome",
            [target(f"sum by (outcome) (rate(runmesh_social_posts_total[{RATE}]))", "{{outcome}}")],
            unit="reqps",
            stack=True,
            description="CreatePost calls: created (committed), invalid, rate_limited (a wall of it is a spammer or a client retrying in a loop), refused, error.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Comments per second, by kind and outcome",
            [target(f"sum by (kind, outcome) (rate(runmesh_social_comments_total[{RATE}]))", "{{kind}} {{outcome}}")],
            unit="reqps",
            stack=True,
            description="CreateComment calls on posts (comment) and replies to comments (reply).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Reports per second, by kind and outcome",
            [target(f"sum by (kind, outcome) (rate(runmesh_social_reports_total[{RATE}]))", "{{kind}} {{outcome}}")],
            unit="reqps",
            stack=True,
            description="Moderation load: recorded reports land in the crews' queues; hidden is the report that reached the threshold and hid the content; repeated changed nothing.",
        ),
        w=8,
    )

    layout.row("Notifications and the assistant (svc-assist)")
    layout.add(
        timeseries(
            "svc-assist calls per second, by function and result",
            [target(f"sum by (function, result) (rate(function_calls_total{{{module('assist')}}}[{RATE}]))", "{{function}} {{result}}")],
            unit="reqps",
            stack=True,
            description="Notifications (inbox, preferences, test sends) and assistant answers. Per-channel counters and Slack errors are listed in docs/operations.md.",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "svc-assist latency p95, by function",
            [target(f"histogram_quantile(0.95, sum by (le, function) (rate(function_calls_duration_seconds_bucket{{{module('assist')}}}[{RATE}])))", "{{function}}")],
            unit="s",
            description="How long assistant answers and notification calls take.",
        ),
        w=12,
    )
    layout.add(
        loki_timeseries(
            "Slack errors (logs)",
            'sum by (level) (count_over_time({service="assist"} |~ "(?i)slack" | json | level=~"WARN|ERROR" [$__auto]))',
            "{{level}}",
            description="svc-assist's warnings and errors about Slack: rate limits, retries, a refused token (alert RunmeshSlackDeliveryStopped).",
        ),
        w=12,
    )
    layout.add(
        logs("Slack log lines", '{service="assist"} |~ "(?i)slack" | json | level=~"WARN|ERROR"'),
        w=12,
    )

    layout.row("Events (outbox and consumers)")
    layout.add(
        timeseries(
            "Outbox backlog (Kafka mode)",
            [target("max by (source) (runmesh_outbox_pending)", "{{source}}")],
            description="Events written but not yet published to Kafka, per source service. Growing: the relay cannot publish (alert RunmeshOutboxBacklogGrowing).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Consumer lag (embedded log)",
            [target("max by (group, topic) (runmesh_event_consumer_lag)", "{{group}} ← {{topic}}")],
            description="Events a consumer group has not read yet, per topic (runmesh up's embedded log). Kafka's lag per group is in kafka-ui.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Delivery delay p95, by consumer group",
            [target(f"histogram_quantile(0.95, sum by (le, group) (rate(runmesh_event_delivery_delay_seconds_bucket[{RATE}])))", "{{group}}")],
            unit="s",
            description="From an event's occurred_at to the commit of its handler (both modes): how stale the projections are.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Events handled per second, by consumer group",
            [target(f"sum by (group) (rate(runmesh_event_consumer_handled_total[{RATE}]))", "{{group}}")],
            unit="ops",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Handler failures and held-back consumers",
            [
                target(f"sum by (group) (rate(runmesh_event_consumer_failures_total[{RATE}]))", "failures/s {{group}}"),
                target("sum by (group) (runmesh_event_consumer_retrying)", "held back {{group}}", "B"),
            ],
            description="A failing handler is retried forever and holds back the later events of its source (alert RunmeshConsumerStuck).",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Embedded event log size",
            [target("max by (source) (runmesh_event_log_bytes)", "{{source}}")],
            unit="bytes",
            description="What each service's embedded log retains (runmesh up): it grows while a group is slow.",
        ),
        w=8,
    )

    layout.row("gRPC, per service")
    layout.add(
        timeseries(
            "Error ratio per service",
            [
                target(
                    f"sum by (service) ({GRPC_ERRORS}) / sum by (service) ({GRPC_CALLS})",
                    "{{service}}",
                )
            ],
            unit="percentunit",
            description="Faults (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED…) over all calls of each service's gRPC handlers; refusals (NOT_FOUND, SOLD_OUT…) are answers, not errors.",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Calls per second per service",
            [target(f"sum by (service) ({GRPC_CALLS})", "{{service}}")],
            unit="reqps",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Latency p99 per service",
            [target(f'histogram_quantile(0.99, sum by (le, service) ({grpc_rate("function_calls_duration_seconds_bucket")}))', "{{service}}")],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        stat(
            "Health (grpc.health.v1)",
            [target("min by (grpc_service) (runmesh_health_serving)", "{{grpc_service}}", instant=True)],
            description="SERVING once every dependency answers; NOT_SERVING pulls the pod out of the Service (alert RunmeshServiceNotServing).",
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
            mappings=[{"type": "value", "options": {"0": {"text": "NOT_SERVING"}, "1": {"text": "SERVING"}}}],
        ),
        w=12,
        h=6,
    )
    layout.add(
        stat(
            "Processes scraped",
            [target('sum by (service) (up{job="runmesh"})', "{{service}}", instant=True)],
            description="Processes per service Prometheus reaches (alerts RunmeshTargetDown, RunmeshServiceAbsent).",
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        w=12,
        h=6,
    )

    layout.row("Logs (Loki)")
    layout.add(
        loki_timeseries(
            "Warnings and errors per service",
            'sum by (service, level) (count_over_time({service=~"user|run|social|race|assist|edge", level=~"WARN|ERROR"} [$__auto]))',
            "{{service}} {{level}}",
        ),
        w=24,
    )
    layout.add(
        logs(
            "Errors and warnings",
            '{service=~"user|run|social|race|assist|edge", level=~"WARN|ERROR"} | json',
            description="Every runmesh warning and error. An internal error's error_id is what the client saw; expand a line for request_id, rpc and traceparent.",
        ),
        w=24,
        h=12,
    )
    return dashboard(
        "runmesh",
        "runmesh",
        "What an operator watches: registration openings, accounts, run imports, notifications, events, gRPC errors per service, and the logs next to them. docs/operations.md#dashboards",
        layout,
    )


# ------------------------------------------------------------------ autometrics
SERVICE_VAR = query_variable("service_name", "Service", "label_values(function_calls_total, service_name)")
MODULE_VAR = query_variable("module", "Module", 'label_values(function_calls_total{service_name=~"$service_name"}, module)')
FILTER = 'service_name=~"$service_name", module=~"$module"'


def overview_dashboard():
    layout = Layout()
    layout.row("Every instrumented function")
    layout.add(
        timeseries(
            "Call rate (top 20)",
            [target(f"topk(20, sum by (function, module, service_name) (rate(function_calls_total{{{FILTER}}}[{RATE}])))", "{{function}} ({{module}})")],
            unit="reqps",
        ),
        w=24,
    )
    layout.add(
        timeseries(
            "Error ratio (top 20)",
            [
                target(
                    f'topk(20, sum by (function, module, service_name) (rate(function_calls_total{{{FILTER}, result="error"}}[{RATE}]))'
                    f" / sum by (function, module, service_name) (rate(function_calls_total{{{FILTER}}}[{RATE}])))",
                    "{{function}} ({{module}})",
                )
            ],
            unit="percentunit",
        ),
        w=24,
    )
    layout.add(
        timeseries(
            "Latency p95 (top 20)",
            [
                target(
                    f"topk(20, histogram_quantile(0.95, sum by (le, function, module, service_name) (rate(function_calls_duration_seconds_bucket{{{FILTER}}}[{RATE}]))))",
                    "{{function}} ({{module}})",
                )
            ],
            unit="s",
        ),
        w=24,
    )
    layout.add(
        timeseries(
            "Concurrent calls",
            [target(f"sum by (function, module) (function_calls_concurrent{{{FILTER}}}) > 0", "{{function}} ({{module}})")],
        ),
        w=12,
    )
    layout.add(
        table(
            "Build info",
            [target("last_over_time(build_info[1h])", "", instant=True)],
            description="Version, commit and autometrics version of each process.",
        ),
        w=12,
    )
    return dashboard(
        "autometrics-overview",
        "Autometrics Overview",
        "Call rate, error ratio and latency of every function autometrics instruments (the gRPC handlers, event handlers, relays).",
        layout,
        variables=[SERVICE_VAR, MODULE_VAR],
        tags=["autometrics"],
    )


def function_dashboard():
    layout = Layout()
    function_var = query_variable(
        "function",
        "Function",
        'label_values(function_calls_total{service_name=~"$service_name", module=~"$module"}, function)',
        multi=False,
        include_all=False,
    )
    selector = f'{FILTER}, function="$function"'
    layout.row("$function")
    layout.add(
        timeseries(
            "Calls per second, by result",
            [target(f"sum by (result) (rate(function_calls_total{{{selector}}}[{RATE}]))", "{{result}}")],
            unit="reqps",
            stack=True,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Error ratio",
            [
                target(
                    f'sum(rate(function_calls_total{{{selector}, result="error"}}[{RATE}])) / sum(rate(function_calls_total{{{selector}}}[{RATE}]))',
                    "error ratio",
                )
            ],
            unit="percentunit",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Latency (p50, p95, p99)",
            [
                target(f"histogram_quantile({q}, sum by (le) (rate(function_calls_duration_seconds_bucket{{{selector}}}[{RATE}])))", f"p{int(q * 100)}", ref)
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Concurrent calls",
            [target(f"sum(function_calls_concurrent{{{selector}}})", "in flight")],
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Callers",
            [target(f"sum by (caller_function, caller_module) (rate(function_calls_total{{{selector}}}[{RATE}]))", "{{caller_function}} ({{caller_module}})")],
            unit="reqps",
            description="Instrumented functions that called this one.",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Callees",
            [target(f'sum by (function, module) (rate(function_calls_total{{service_name=~"$service_name", caller_function="$function"}}[{RATE}]))', "{{function}} ({{module}})")],
            unit="reqps",
            description="Instrumented functions this one called.",
        ),
        w=12,
    )
    return dashboard(
        "autometrics-function",
        "Autometrics Function Explorer",
        "One instrumented function in detail: calls, errors, latency, concurrency, callers and callees.",
        layout,
        variables=[SERVICE_VAR, MODULE_VAR, function_var],
        tags=["autometrics"],
    )


def slo_dashboard():
    layout = Layout()
    objective_var = query_variable("objective", "Objective", "label_values(slo:sli_error:ratio_rate5m, objective_name)")
    sel = 'objective_name=~"$objective"'
    layout.row("Success rate objectives")
    layout.add(
        timeseries(
            "Success rate (5m) against the objective",
            [
                target(f'1 - max by (objective_name) (slo:sli_error:ratio_rate5m{{{sel}, sloth_slo=~"success-rate-.*"}})', "{{objective_name}}"),
                target(f'max by (objective_name) (slo:sli_error:ratio_rate5m{{{sel}, sloth_slo=~"success-rate-.*"}} * 0 + on (sloth_id) group_left slo:objective:ratio)', "{{objective_name}} objective", "B"),
            ],
            unit="percentunit",
            minimum=None,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Burn rate (5m), success rate",
            [target(f'max by (objective_name) (slo:current_burn_rate:ratio{{{sel}, sloth_slo=~"success-rate-.*"}})', "{{objective_name}}")],
            description="1 spends the 30-day error budget exactly in 30 days; 14.4 over 5m and 1h pages, 6 over 30m and 6h pages, 3 over 2h and 1d and 1 over 6h and 3d open a ticket.",
        ),
        w=12,
    )
    layout.row("Latency objectives")
    layout.add(
        timeseries(
            "Calls within the latency threshold (5m)",
            [target(f'1 - max by (objective_name) (slo:sli_error:ratio_rate5m{{{sel}, sloth_slo=~"latency-.*"}})', "{{objective_name}}")],
            unit="percentunit",
            minimum=None,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Burn rate (5m), latency",
            [target(f'max by (objective_name) (slo:current_burn_rate:ratio{{{sel}, sloth_slo=~"latency-.*"}})', "{{objective_name}}")],
        ),
        w=12,
    )
    layout.row("Error budget (30 days)")
    layout.add(
        stat(
            "Error budget left",
            [target(f"max by (objective_name, sloth_slo) (slo:period_error_budget_remaining:ratio{{{sel}}})", "{{objective_name}} {{sloth_slo}}", instant=True)],
            unit="percentunit",
            thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.25}, {"color": "green", "value": 0.5}],
            description="What is left of each objective's 30-day error budget (below 0: the objective was missed).",
        ),
        w=24,
        h=8,
    )
    layout.add(
        table(
            "Objectives",
            [target('max by (objective_name, objective_percentile, objective_latency_threshold) (last_over_time(function_calls_duration_seconds_count{objective_name!=""}[1h]))', "", instant=True)],
            description="Every objective declared in the code (Objective::new in svc-*/src/grpc.rs), its percentile and latency threshold.",
        ),
        w=24,
    )
    return dashboard(
        "autometrics-slo",
        "Autometrics SLOs",
        "Every autometrics objective (user_api, user_internal, run_api, social_api, race_api, …): success rate and latency against the target, burn rate and error budget left. Recording rules: deploy/prometheus/rules/autometrics.rules.yml.",
        layout,
        variables=[objective_var],
        tags=["autometrics"],
    )


DASHBOARDS = {
    "runmesh.json": runmesh_dashboard,
    "autometrics-overview.json": overview_dashboard,
    "autometrics-function.json": function_dashboard,
    "autometrics-slo.json": slo_dashboard,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ checks
def walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def provisioned_uids(problems):
    config = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    uids = {}
    for source in config.get("datasources", []):
        if not source.get("uid"):
            problems.append(f"{DATASOURCES.name}: data source {source.get('name')} has no fixed uid")
        uids[source.get("uid")] = source.get("type")
    return uids


def known_metrics():
    """Names of runmesh series something defines: registered in code, or recorded by a rule."""
    names = set()
    for path in list(ROOT.glob("platform/src/**/*.rs")) + list(ROOT.glob("svc-*/src/**/*.rs")):
        names.update(re.findall(r'"(runmesh_[a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    for path in (ROOT / "deploy/prometheus/rules").glob("*.yml"):
        names.update(re.findall(r"record: ([a-zA-Z0-9_:]+)", path.read_text(encoding="utf-8")))
    return names


def check_promql(expressions, problems):
    """Parses every PromQL expression with promtool (as recording rules), Grafana's variables
    replaced by plausible values."""
    rules = []
    for where, expr in expressions:
        text = re.sub(r"\$__(rate_interval|interval|range|auto)", "5m", expr)
        text = re.sub(r"\$\{?\w+(:\w+)?\}?", "x", text)
        rules.append({"record": "grafana:check", "expr": text, "labels": {"panel": where[:60]}})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as file:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, file)
    result = subprocess.run(["promtool", "check", "rules", "--lint=none", file.name], capture_output=True, text=True)
    pathlib.Path(file.name).unlink()
    if result.returncode != 0:
        problems.append("PromQL that does not parse:\n" + result.stdout + result.stderr)


def check(problems):
    uids = provisioned_uids(problems)
    defined = known_metrics()
    provider = yaml.safe_load((HERE / "provisioning/dashboards/runmesh.yaml").read_text(encoding="utf-8"))
    paths = [p["options"]["path"] for p in provider["providers"]]
    compose = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    for path in paths:
        if f"./deploy/grafana/dashboards:{path}" not in compose:
            problems.append(f"the dashboard provider reads {path}, where compose.yaml does not mount deploy/grafana/dashboards")
    expressions = []
    seen_uids = {}
    files = sorted(OUT.glob("*.json"))
    for file in files:
        name = file.name
        text = file.read_text(encoding="utf-8")
        try:
            board = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(f"{name}: not JSON: {error}")
            continue
        if "${DS_" in text or "__inputs" in board:
            problems.append(f"{name}: has import-time inputs (${{DS_…}} / __inputs); reference data sources by uid")
        if not board.get("uid") or not board.get("title"):
            problems.append(f"{name}: needs a uid and a title")
        if board.get("uid") in seen_uids:
            problems.append(f"{name}: uid {board['uid']} also used by {seen_uids[board['uid']]}")
        seen_uids[board.get("uid")] = name
        for where, node in walk(board):
            source = node.get("datasource")
            if isinstance(source, str):
                problems.append(f"{name}{where}: data source by name {source!r}; use {{type, uid}}")
            elif isinstance(source, dict):
                uid = source.get("uid")
                if source.get("type") == "grafana":
                    continue
                if uid not in uids:
                    problems.append(f"{name}{where}: data source uid {uid!r} is not provisioned ({sorted(uids)})")
                elif source.get("type") != uids[uid]:
                    problems.append(f"{name}{where}: data source {uid} is a {uids[uid]}, not a {source.get('type')}")
        panels = [p for p in board.get("panels", []) if p.get("type") != "row"]
        if not panels:
            problems.append(f"{name}: no panels")
        ids = [p.get("id") for p in board.get("panels", [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{name}: panel ids repeat")
        for panel in panels:
            where = f"{name} panel {panel.get('title')!r}"
            targets = panel.get("targets") or []
            if not targets:
                problems.append(f"{where}: no queries")
            for item in targets:
                expr = (item.get("expr") or "").strip()
                if not expr:
                    problems.append(f"{where}: empty query {item.get('refId')}")
                    continue
                kind = (item.get("datasource") or panel.get("datasource") or {}).get("type")
                if kind == "prometheus":
                    expressions.append((f"{name}: {panel.get('title')}", expr))
                    for metric in re.findall(r"\b(runmesh_[a-z0-9_]+)", re.sub(r'"[^"]*"', '""', expr)):
                        base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
                        if metric not in defined and base not in defined:
                            problems.append(f"{where}: {metric} is defined by no code or rule")
                elif kind == "loki" and not expr.startswith(("{", "sum", "count", "rate")):
                    problems.append(f"{where}: {expr!r} is not a LogQL query")
        for variable in board.get("templating", {}).get("list", []):
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if variable.get("type") == "query" and not query:
                problems.append(f"{name}: variable {variable.get('name')} has no query")
    missing = set(DASHBOARDS) - {f.name for f in files}
    if missing:
        problems.append(f"missing dashboards: {sorted(missing)}")
    check_promql(expressions, problems)
    return len(files), len(expressions)


def main():
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args()
    problems = []
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            problems.append(f"{path.relative_to(ROOT)} is out of date (scripts/check-manifests --update)")
    if args.check:
        dashboards, queries = check(problems)
        if problems:
            sys.exit("deploy/grafana:\n  " + "\n  ".join(problems))
        print(f"deploy/grafana: {dashboards} dashboards valid as provisioned ({queries} PromQL queries parse)")


if __name__ == "__main__":
    main()
