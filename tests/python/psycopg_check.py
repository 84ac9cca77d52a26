#!/usr/bin/env python3
"""psycopg 3 against a PostgreSQL endpoint: server-side and client-side parameter binding,
auto-prepared statements, executemany in pipeline mode, binary results and a 10k-row fetch
(plain and through a server-side cursor).

Usage: psycopg_check.py HOST PORT

Connects as user "jobuser" to database "postgres" without a password (the chunk agent's proxy
injects the real credentials). Prints one JSON object with the results on stdout and exits 0;
on an error prints it (with its SQLSTATE) on stderr and exits 1.
"""

import json
import sys
import traceback

import psycopg
from psycopg import ClientCursor


def run(host: str, port: int) -> dict:
    out: dict = {"psycopg": psycopg.__version__, "libpq": psycopg.pq.version()}
    with psycopg.connect(
        host=host,
        port=port,
        user="jobuser",
        dbname="postgres",
        connect_timeout=10,
        sslmode="prefer",
    ) as conn:
        # Server-side binding (psycopg 3's default Cursor): Parse/Bind with $n placeholders.
        with conn.cursor() as cur:
            cur.execute("select %s::int4 + %s::int4, %s::text", (40, 2, "it's"))
            total, text = cur.fetchone()
            out["server_side"] = {"sum": total, "text": text}
            cur.execute("select %(a)s::text || %(b)s::text", {"a": "x", "b": "y"})
            out["server_side"]["named"] = cur.fetchone()[0]
            cur.execute("select current_user::text, coalesce(application_name, '') "
                        "from pg_stat_activity where pid = pg_backend_pid()")
            out["current_user"], out["application_name"] = cur.fetchone()

            # Executed more than prepare_threshold (5) times: psycopg prepares it (a named
            # server-side statement) and then only sends Bind/Execute.
            prepared_sum = 0
            for i in range(10):
                cur.execute("select %s::int8 * 3", (i,))
                prepared_sum += cur.fetchone()[0]
            out["auto_prepared_sum"] = prepared_sum
            cur.execute("select %s::int8 + 1", (1,), prepare=True)
            out["forced_prepare"] = cur.fetchone()[0]

            # executemany: psycopg uses libpq's pipeline mode for it.
            cur.execute("create temp table items (id int4, name text)")
            cur.executemany("insert into items values (%s, %s)",
                            [(i, f"item-{i}") for i in range(100)])
            cur.execute("select count(*), sum(id) from items")
            out["executemany"] = list(cur.fetchone())

            # Binary parameters and results.
            cur.execute("select %b::int8, %b::bytea, %b::text",
                        (9_000_000_000, b"\x00\x01\xff", "bïnary"), binary=True)
            big, blob, btext = cur.fetchone()
            out["binary"] = {"int8": big, "bytea_hex": bytes(blob).hex(), "text": btext}

            # 10k rows in one fetch.
            cur.execute("select g, md5(g::text) from generate_series(1, 10000) g")
            rows = cur.fetchall()
            out["fetchall_rows"] = len(rows)
            out["fetchall_last"] = rows[-1][0]
        conn.commit()

        # Client-side binding: the values are merged into the SQL text (simple protocol).
        with ClientCursor(conn) as ccur:
            params = (1, "it's", None)
            out["client_side_mogrify"] = ccur.mogrify("select %s, %s, %s", params)
            ccur.execute("select %s::int4 + 1, %s::text, %s::text", params)
            one, quote, null = ccur.fetchone()
            out["client_side"] = {"sum": one, "text": quote, "null": null}
            ccur.execute("select g from generate_series(1, 10000) g")
            out["client_side_rows"] = len(ccur.fetchall())
        conn.commit()

        # A server-side (named) cursor: DECLARE ... CURSOR and FETCH in a transaction.
        with conn.cursor(name="big_cursor") as ncur:
            ncur.itersize = 1000
            ncur.execute("select g, repeat('x', 40) from generate_series(1, 10000) g")
            count = 0
            text_bytes = 0
            for _, filler in ncur:
                count += 1
                text_bytes += len(filler)
            out["named_cursor_rows"] = count
            out["named_cursor_bytes"] = text_bytes
        conn.commit()

        # Explicit pipeline mode.
        with conn.pipeline():
            cursors = [conn.execute("select %s::int4 * 2", (i,)) for i in range(20)]
        out["pipeline"] = [c.fetchone()[0] for c in cursors]

        # An error, then the session still works.
        try:
            conn.execute("select 1 / 0")
            out["error_sqlstate"] = None
        except psycopg.Error as e:
            out["error_sqlstate"] = e.sqlstate
            conn.rollback()
        out["after_error"] = conn.execute("select 7").fetchone()[0]
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = run(sys.argv[1], int(sys.argv[2]))
    except psycopg.Error as e:
        traceback.print_exc()
        print(f"psycopg_check: error: {e} (SQLSTATE {e.sqlstate})", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
