"""Run the ESL simulator as a stand-alone FreeSWITCH stand-in for demos.

    python -m tests.esl_sim --port 8021 --password ClueCon [--recordings ./recordings]
           [--gateway-dir ./gateways] [--speed 1.0] [--inbound-every 0] [--verbose]

It logs every connection, command and call; Ctrl-C stops it.
"""
import argparse
import logging
import signal

import gevent
import gevent.event

from tests.esl_sim import ESLSimulator

log = logging.getLogger("tests.esl_sim")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.esl_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8021)
    parser.add_argument("--password", default="ClueCon")
    parser.add_argument("--recordings", default=None, help="root folder for uuid_record files")
    parser.add_argument("--gateway-dir", default=None, help="folder of gateway *.xml read by rescan")
    parser.add_argument("--speed", type=float, default=1.0, help="scenario speed factor (2 = twice as fast)")
    parser.add_argument("--transcript-gateways", action="store_true",
                        help="preload reg_fail_gw and uas_gw exactly as captured")
    parser.add_argument("--inbound-every", type=float, default=0.0,
                        help="seconds between demo inbound calls (0 = none)")
    parser.add_argument("--verbose", action="store_true", help="log every event sent")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    sim = ESLSimulator(host=args.host, port=args.port, password=args.password,
                       recordings_root=args.recordings, speed=args.speed, gateway_dir=args.gateway_dir)
    if args.transcript_gateways:
        sim.load_transcript_gateways()
    sim.start()
    log.info("FreeSWITCH ESL simulator on %s:%s (password %r); originate to 486.../408.../503.../"
                 "999.../777... for busy/no-answer/failure/drop/remote-hangup, anything else answers",
                 args.host, sim.port, args.password)

    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGINT, stop.set)
    gevent.signal_handler(signal.SIGTERM, stop.set)

    def inbound_loop():
        n = 0
        while not stop.is_set():
            gevent.sleep(args.inbound_every)
            n += 1
            sim.inbound_call(from_number=f"1555000{n:04d}", to_number="1000", answer_after=0.5,
                             hangup_after=5.0)

    if args.inbound_every > 0:
        gevent.spawn(inbound_loop)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
