"""The driver over a real TCP socket (pyvisa-py) against the simulator's loopback server."""
import socket
import threading

import pytest

from instruments.espec.adapters import open_chamber
from instruments.espec.errors import EspecCommunicationError, EspecError, EspecRefused
from instruments.espec.simulator import EspecSimulator, serve_tcp
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab


@pytest.fixture
def lab():
    return SimLab(VirtualClock(start=0.0))


def tcp_chamber(server, clock, **fields):
    return open_chamber({"transport": "tcp", "address": server.resource_name, "timeout_s": 0.5,
                         **fields}, clock=clock, visa_library="@py")


def python_threads() -> set:
    """Threads started through ``threading`` (a Qt thread seen from Python shows up as a
    _DummyThread whenever Python first runs in it, which says nothing about this test)."""
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def test_driver_over_tcp(lab):
    threads_before = python_threads()
    sim = EspecSimulator(lab)
    server = serve_tcp(sim)
    assert server._server.server_address[0] == "127.0.0.1"
    chamber = tcp_chamber(server, lab.clock)
    try:
        assert "simulator" in chamber.rom
        chamber.set_temperature(-10.0, upper_c=0.0, lower_c=-20.0)
        chamber.mode = "CONSTANT"
        status = chamber.temperature_status
        assert (status.setpoint_c, status.upper_limit_c, status.lower_limit_c) == (-10.0, 0.0, -20.0)
        lab.clock.sleep(300.0)
        assert chamber.monitor.temperature_c == pytest.approx(13.0, abs=0.1)
        with pytest.raises(EspecRefused, match=r"'TEMP, S5.0'.*NA:DATA OUT OF RANGE"):
            chamber.setpoint = 5.0
        assert chamber.setpoint == -10.0       # still in step after the refusal
    finally:
        chamber.close()
        server.close()
    assert python_threads() == threads_before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()


def test_timeout_over_tcp_is_retried_and_names_the_command(lab):
    server = serve_tcp(EspecSimulator(lab, faults={"drop_reply_every": 2}))
    chamber = tcp_chamber(server, lab.clock)      # TYPE? at connect is the first command
    try:
        assert chamber.mode == "STANDBY"          # the second gets no reply: asked again
        assert chamber.retried_commands == 1
        chamber.retries = 0
        with pytest.raises(EspecCommunicationError, match=r"'MON\?'.*no reply"):
            chamber.monitor
        assert chamber.mode == "STANDBY"
    finally:
        chamber.close()
        server.close()


@pytest.mark.timeout(120)
def test_a_dropped_connection_is_opened_again(lab):
    sim = EspecSimulator(lab)
    server = serve_tcp(sim)
    chamber = tcp_chamber(server, lab.clock)
    try:
        assert chamber.mode == "STANDBY"
        server.close()                        # the chamber restarts: the socket is gone
        server = serve_tcp(sim, port=server.port)
        chamber.setpoint = 30.0
        assert chamber.setpoint == 30.0
        assert chamber.retried_commands >= 1
    finally:
        chamber.close()
        server.close()


def serve_bytes(replies: dict):
    """A one-client TCP chamber that answers each command line with the given raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = listener.accept()
        with conn:
            buffer = b""
            while True:
                data = conn.recv(1024)
                if not data:
                    return
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    conn.sendall(replies.get(line.decode(), b"NA:CMD ERR") + b"\r\n")
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener, thread


def test_undecodable_bytes_from_a_socket_are_an_error_not_a_unicode_traceback(lab):
    listener, thread = serve_bytes({"TYPE?": b"T,S2,150.0", "MON?": b"\xb025.0,,CONSTANT,0",
                                    "TEMP?": b"1e999,25.0,150.0,-40.0"})
    port = listener.getsockname()[1]
    chamber = open_chamber({"transport": "tcp", "address": f"127.0.0.1:{port}", "timeout_s": 0.5},
                           clock=lab.clock, visa_library="@py")
    try:
        with pytest.raises(EspecError, match=r"'MON\?'.*undecodable reply \(byte 0xb0"):
            chamber.monitor
        with pytest.raises(EspecError, match=r"'TEMP\?'.*'1e999' is not a finite number"):
            chamber.temperature
        assert chamber.retried_commands == 2 * chamber.retries
    finally:
        chamber.close()
        listener.close()
        thread.join(timeout=5)


def test_close_drops_connected_clients(lab):
    server = serve_tcp(EspecSimulator(lab))
    client = socket.create_connection(("127.0.0.1", server.port), timeout=2.0)
    client.sendall(b"MO")
    client.sendall(b"DE?\r\nTEMP?\r\n")
    received = b""
    while received.count(b"\r\n") < 2:
        received += client.recv(1024)
    assert received == b"STANDBY\r\n23.0,23.0,150.0,-40.0\r\n"
    server.close()                               # returns although the client is still open
    assert client.recv(1024) == b""
    client.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_server_refuses_non_loopback_hosts(lab, host):
    with pytest.raises(ValueError, match="loopback"):
        serve_tcp(EspecSimulator(lab), host=host)
