#!/usr/bin/env python3
"""Check scorekeeper's ClickHouse .sql files against two ClickHouse versions.

Runs every statement of every .sql file under crates/analytics/sql against
  (a) the ClickHouse server named by $CLICKHOUSE_URL (the local stack runs Debian's
      18.16), inside a throwaway database `sqlcheck_<random>` that is dropped afterwards;
  (b) current ClickHouse embedded in the Python package chdb (PyPI: chdb-core), in a
      chdb Session so tables persist between statements;
  (c) the local ClickHouse cluster (18.16, `scripts/stack cluster`; node 1 at
      $SK_CLUSTER_URL, cluster $SK_CLUSTER_NAME): the cluster DDL ON CLUSTER in a
      throwaway database, then every query through its Distributed tables.
Invoked by scripts/check-clickhouse-sql, which sets up the environment.

Rules for the .sql files:
  * sql/schema/**.sql  DDL, applied first in sorted order; several statements per file
                       are separated by a `;` at the end of a line.
  * sql/queries/**.sql SELECT/INSERT queries for the `clickhouse` Rust crate, run after
                       all schema files. `?fields` becomes `*`; each other `?` is a bind
                       placeholder, replaced in order by the SQL literals listed in a line
                           -- check-params: 1, '2024-01-01 00:00:00', [1, 2]
                       (a file without `?` needs no such line).
                       A query written once for several tables names them as
                       `{table}`, `{time}`, ... (the Rust code fills them in); a line
                           -- check-names: table=conversations time=started_at | table=scores time=...
                       lists every filling, and each is checked.
  * sql/cluster/**.sql  the schema on a cluster (CLICKHOUSE_CLUSTER), applied after the
                       schema: `{database}` and `{cluster}` are filled in by the checker
                       (the Rust code fills them in too); `{shard}` and `{replica}` are the
                       nodes' macros. On the cluster (c) they run as written. chdb cannot
                       form a cluster: there each statement must parse (EXPLAIN AST) and
                       its local-table form (no ON CLUSTER, ReplacingMergeTree for
                       ReplicatedReplacingMergeTree) must apply; Distributed tables only
                       parse. The single server (a) has no cluster and skips them.
  * A query with `remote(` asks another node (the topology probe): on chdb it only
    has to parse, since current ClickHouse cannot query an 18.16 server.
  * Lines starting with `--` are stripped before a statement is sent.
  * Use unqualified table names: statements run with the throwaway database as default.
Exit status: 0 if every file passed on both engines (or the sql directory does not
exist yet), 1 otherwise.
"""

import argparse
import base64
import os
import re
import secrets
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SQL_DIR = os.path.join(REPO_ROOT, "crates", "analytics", "sql")
PARAMS_RE = re.compile(r"^\s*--\s*check-params\s*:(.*)$")
NAMES_RE = re.compile(r"^\s*--\s*check-names\s*:(.*)$")
NAME_SLOT_RE = re.compile(r"\{([a-z_]+)\}")
ERROR_LIMIT = 800


class EngineError(Exception):
    pass


# ---------------------------------------------------------------------------
# parsing the .sql files


def split_params(text):
    """Split a check-params list on top-level commas (quotes and brackets respected)."""
    values, cur, depth, quote, i = [], [], 0, None, 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            values.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if quote or depth:
        raise ValueError("unbalanced quotes or brackets in check-params")
    last = "".join(cur).strip()
    if last or values:
        values.append(last)
    if any(v == "" for v in values):
        raise ValueError("empty value in check-params")
    return values


def question_marks_in_literals(sql):
    """Count '?' inside string literals, quoted identifiers and inline comments: the
    clickhouse crate replaces every '?' in the text, even there."""
    count, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = i + 1
            while j < n and sql[j] != c:
                j += 2 if sql[j] == "\\" else 1
            count += sql[i:j].count("?")
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            count += sql[i:j].count("?")
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            count += sql[i:j].count("?")
            i = j
        else:
            i += 1
    return count


class SqlFile:
    def __init__(self, path, rel, kind):
        self.path, self.rel, self.kind = path, rel, kind
        self.statements = []  # ready to send
        self.problems = []  # fatal: the file cannot be checked as written
        self.warnings = []

    def parse(self):
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        lines = text.splitlines()
        params_lines = [m.group(1) for m in map(PARAMS_RE.match, lines) if m]
        comment_lines = [l for l in lines if l.lstrip().startswith("--")]
        body = "\n".join(l for l in lines if not l.lstrip().startswith("--"))

        if any("?" in l for l in comment_lines if not PARAMS_RE.match(l)):
            self.warnings.append(
                "a comment line contains '?': the clickhouse crate treats every '?' as a "
                "placeholder unless comment lines are stripped before the query is built")
        if question_marks_in_literals(body):
            self.warnings.append(
                "'?' inside a string literal or inline comment: the clickhouse crate binds it "
                "as a placeholder too")
        if re.search(r"\bscorekeeper\s*\.", body):
            self.warnings.append(
                "qualified name `scorekeeper.<table>`: use unqualified names so the "
                "configured database applies")

        placeholders = len(re.findall(r"\?(?!fields)", body))
        params = []
        if len(params_lines) > 1:
            self.problems.append("more than one `-- check-params:` line")
            return self
        if params_lines:
            try:
                params = split_params(params_lines[0])
            except ValueError as e:
                self.problems.append(str(e))
                return self
        if placeholders and not params_lines:
            self.problems.append(
                "%d '?' placeholder(s) but no `-- check-params: ...` line giving values"
                % placeholders)
            return self
        if placeholders != len(params):
            self.problems.append(
                "%d '?' placeholder(s) but check-params gives %d value(s)"
                % (placeholders, len(params)))
            return self

        values = iter(params)
        body = re.sub(r"\?(fields)?", lambda m: "*" if m.group(1) else next(values), body)
        names_lines = [m.group(1) for m in map(NAMES_RE.match, lines) if m]
        fillings = [{}]
        if names_lines:
            try:
                fillings = [
                    dict(pair.split("=", 1) for pair in variant.split())
                    for variant in names_lines[0].split("|")
                ]
            except ValueError:
                self.problems.append("check-names: write `name=value ...`, fillings apart by `|`")
                return self
        for filling in fillings:
            # Without a check-names line braces are left alone (a schema's
            # `{shard}` macros are the server's to fill).
            slots = set(NAME_SLOT_RE.findall(body)) if names_lines else set()
            if slots != set(filling):
                self.problems.append(
                    "names {%s} in the query, but check-names fills {%s}"
                    % (", ".join(sorted(slots)), ", ".join(sorted(filling))))
                return self
            text = NAME_SLOT_RE.sub(lambda m: filling[m.group(1)], body) if names_lines else body
            for stmt in re.split(r";[ \t]*(?:--[^\n]*)?(?:\n|$)", text):
                if stmt.strip():
                    self.statements.append(stmt.strip().rstrip(";").strip())
        if not self.statements:
            self.problems.append("no SQL statement in file")
        return self


def collect(sql_dir):
    files = []
    for dirpath, _, names in os.walk(sql_dir):
        for name in names:
            if name.endswith(".sql"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, sql_dir)
                top = rel.split(os.sep)[0] if os.sep in rel else ""
                kind = {"schema": 0, "cluster": 1, "queries": 2}.get(top, 3)
                files.append(SqlFile(path, rel, kind))
    files.sort(key=lambda f: (f.kind, f.rel))
    return files


# ---------------------------------------------------------------------------
# engines


def short(msg):
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= ERROR_LIMIT else msg[:ERROR_LIMIT] + " ..."


SCHEMA, CLUSTER, QUERIES = 0, 1, 2
REPLICATED_RE = re.compile(r"ReplicatedReplacingMergeTree\('[^']*',\s*'[^']*',\s*(\w+)\)")
ON_CLUSTER_RE = re.compile(r"\s+ON CLUSTER\s+\w+")


def fill_cluster_names(sql, database, cluster):
    return sql.replace("{database}", database).replace("{cluster}", cluster)


class ServerEngine:
    """A ClickHouse server over HTTP, in a throwaway database."""

    kinds = (SCHEMA, QUERIES)

    def __init__(self, url, database):
        self.url = url.rstrip("/") + "/"
        self.database = database
        self.headers = {}
        user, password = os.environ.get("CLICKHOUSE_USER"), os.environ.get("CLICKHOUSE_PASSWORD")
        if user or password:
            token = base64.b64encode(("%s:%s" % (user or "default", password or "")).encode())
            self.headers["Authorization"] = "Basic " + token.decode()
        self.version = self._post("SELECT version()", database=None).strip()
        self.label = "clickhouse-server " + self.version

    def _post(self, sql, database="__default__"):
        db = self.database if database == "__default__" else database
        url = self.url + ("?database=" + db if db else "")
        req = urllib.request.Request(url, data=sql.encode("utf-8"), headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise EngineError(e.read().decode("utf-8", "replace") or str(e)) from None
        except (urllib.error.URLError, OSError) as e:
            raise EngineError("cannot reach %s: %s" % (self.url, e)) from None

    def setup(self):
        self._post("CREATE DATABASE %s" % self.database, database=None)

    def run(self, sql):
        self._post(sql)

    def teardown(self):
        self._post("DROP DATABASE IF EXISTS %s" % self.database, database=None)


class ClusterEngine(ServerEngine):
    """A ClickHouse cluster through one node: the cluster schema ON CLUSTER (it
    makes the throwaway database on every node), then the queries through the
    Distributed tables."""

    kinds = (CLUSTER, QUERIES)

    def __init__(self, url, cluster, database):
        super().__init__(url, database)
        self.cluster = cluster
        self.label = "clickhouse-server %s cluster %s" % (self.version, cluster)

    def setup(self):
        pass  # sql/cluster/000_database.sql makes the database

    def run(self, sql):
        self._post(fill_cluster_names(sql, self.database, self.cluster),
                   database=None if "ON CLUSTER" in sql else self.database)

    def teardown(self):
        self._post("DROP DATABASE IF EXISTS %s ON CLUSTER %s" % (self.database, self.cluster),
                   database=None)


class ChdbEngine:
    """Current ClickHouse embedded in chdb; one Session so tables persist."""

    kinds = (SCHEMA, CLUSTER, QUERIES)

    def __init__(self, database):
        import chdb
        from chdb import session

        self.database = database
        self.tmpdir = tempfile.mkdtemp(prefix="sqlcheck-chdb-")
        self.session = session.Session(self.tmpdir)
        self.version = self._query("SELECT version()").strip().strip('"')
        self.label = "chdb %s (ClickHouse %s)" % (getattr(chdb, "__version__", "?"), self.version)

    def _query(self, sql):
        try:
            res = self.session.query(sql, "CSV")
        except Exception as e:  # chdb raises ChdbError (a RuntimeError) on SQL errors
            raise EngineError(str(e)) from None
        err = getattr(res, "error_message", None)
        if callable(err):
            err = err()
        if err:
            raise EngineError(err)
        return res.data() if hasattr(res, "data") else str(res)

    def setup(self):
        self._query("CREATE DATABASE %s" % self.database)
        self._query("USE %s" % self.database)

    def run(self, sql):
        if "remote(" in sql:
            # A query to another node: the only one here is the 18.16 server,
            # whose protocol a current client does not speak. It must parse.
            self._query("EXPLAIN AST " + sql)
            return
        if "ON CLUSTER" not in sql:
            self._query(sql)
            return
        # No cluster here: the statement must parse, and its local form apply.
        sql = fill_cluster_names(sql, self.database, "sqlcheck_cluster")
        self._query("EXPLAIN AST " + sql)
        if "ENGINE = Distributed" not in sql:
            self._query(REPLICATED_RE.sub(r"ReplacingMergeTree(\1)", ON_CLUSTER_RE.sub("", sql)))

    def teardown(self):
        try:
            self._query("DROP DATABASE IF EXISTS %s" % self.database)
        finally:
            self.session.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sql-dir", default=DEFAULT_SQL_DIR,
                    help="directory searched for .sql files (default: crates/analytics/sql)")
    ap.add_argument("--engines", default="server,chdb,cluster",
                    help="comma-separated subset of: server, chdb, cluster (default: all)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each statement sent")
    args = ap.parse_args()
    wanted = {e.strip() for e in args.engines.split(",") if e.strip()}
    if not wanted or wanted - {"server", "chdb", "cluster"}:
        ap.error("--engines takes server, chdb and/or cluster")

    sql_dir = os.path.abspath(args.sql_dir)
    shown_dir = os.path.relpath(sql_dir, REPO_ROOT) if sql_dir.startswith(REPO_ROOT + os.sep) else sql_dir
    if not os.path.isdir(sql_dir):
        print("warning: %s does not exist yet: no ClickHouse .sql files to check" % shown_dir)
        return 0
    files = [f.parse() for f in collect(sql_dir)]
    if not files:
        print("error: no ClickHouse .sql files found under %s" % shown_dir)
        return 1
    print("ClickHouse SQL check: %d file(s) under %s" % (len(files), shown_dir))

    database = "sqlcheck_" + secrets.token_hex(4)
    engines = []
    try:
        if "server" in wanted:
            url = os.environ.get("CLICKHOUSE_URL")
            if not url:
                print("error: CLICKHOUSE_URL is not set (run: eval \"$(scripts/stack env)\")")
                return 1
            try:
                engines.append(ServerEngine(url, database))
            except EngineError as e:
                print("error: ClickHouse server at %s: %s" % (url, short(e)))
                return 1
        if "cluster" in wanted:
            url, name = os.environ.get("SK_CLUSTER_URL"), os.environ.get("SK_CLUSTER_NAME")
            if not url or not name:
                print("error: SK_CLUSTER_URL or SK_CLUSTER_NAME is not set (start the cluster: "
                      "scripts/stack cluster up; or leave it out: --engines server,chdb)")
                return 1
            try:
                engines.append(ClusterEngine(url, name, database))
            except EngineError as e:
                print("error: ClickHouse cluster at %s: %s (start it: scripts/stack cluster up)"
                      % (url, short(e)))
                return 1
        if "chdb" in wanted:
            try:
                engines.append(ChdbEngine(database))
            except ImportError:
                print("error: Python package chdb is missing: pip install chdb-core")
                return 1
        for engine in engines:
            engine.setup()
            print("  engine: %s (throwaway database %s)" % (engine.label, database))

        failed = 0
        for f in files:
            errors = list(f.problems)
            if not f.problems:
                for engine in (e for e in engines if f.kind in e.kinds):
                    for n, stmt in enumerate(f.statements, 1):
                        if args.verbose:
                            print("    [%s] %s" % (engine.label, " ".join(stmt.split())))
                        try:
                            engine.run(stmt)
                        except EngineError as e:
                            where = " statement %d" % n if len(f.statements) > 1 else ""
                            errors.append("[%s]%s: %s" % (engine.label, where, short(e)))
            failed += bool(errors)
            print("%s %s" % ("FAIL" if errors else "OK  ", f.rel))
            for msg in errors:
                print("       " + msg)
            for msg in f.warnings:
                print("       warning: " + msg)
    except EngineError as e:
        print("error: %s" % short(e))
        return 1
    finally:
        for engine in engines:
            try:
                engine.teardown()
            except Exception as e:  # keep going: report, but never mask the result
                print("warning: cleaning up %s failed: %s" % (engine.label, short(e)))

    print("ClickHouse SQL check: %d file(s) OK, %d failed" % (len(files) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
