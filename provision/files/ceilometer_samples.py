"""Take every sample waiting in Ceilometer's queue on the broker (the central agent's notifications) and print
one JSON line per sample: its meter, resource, volume and polling time (seconds since the epoch). Run on a lab node
with python3-pika; nothing else consumes that queue in the lab, so taking them loses nothing anyone waits for:

    python3 ceilometer_samples.py HOST PORT USER QUEUE   < stdin: the broker user's password"""

import datetime
import json
import sys


def samples(body: bytes) -> list[dict]:
    """The samples of one notification, as oslo.messaging's rabbit driver sends it (its v2 envelope or bare)."""
    message = json.loads(body)
    if "oslo.message" in message:
        message = json.loads(message["oslo.message"])
    out = []
    for s in message["payload"]["samples"]:
        at = datetime.datetime.fromisoformat(s["timestamp"])
        if at.tzinfo is None:  # Ceilometer stamps a poll with utcnow()
            at = at.replace(tzinfo=datetime.UTC)
        out.append({"meter": s["counter_name"], "resource": s["resource_id"], "volume": s["counter_volume"],
                    "at": at.timestamp()})  # fmt: skip
    return out


def main() -> None:
    import pika

    host, port, user, queue = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    password = sys.stdin.readline().rstrip("\n")
    params = pika.ConnectionParameters(host=host, port=port, credentials=pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5, blocked_connection_timeout=10)
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        try:
            ch.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:  # oslo.messaging declares it with the agent's first sample: none yet
                return
            raise
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                break
            for s in samples(body):
                print(json.dumps(s))
    finally:
        conn.close()


if __name__ == "__main__":
    main()
