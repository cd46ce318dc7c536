"""FreeSWITCH Event Socket (inbound mode) simulator for tests, built from real FreeSWITCH transcripts.

    from tests.esl_sim import ESLSimulator
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon")
    sim.start(); ...; sim.stop()

See README.md in this folder.
"""
from tests.esl_sim.server import Channel, ESLSimulator, Gateway, transcript_gateways

__all__ = ["Channel", "ESLSimulator", "Gateway", "transcript_gateways"]
