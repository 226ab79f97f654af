"""glassbox.ports: the ports it hands out are distinct and free, so that servers started together never collide."""

import socket

from glassbox import deploy, ports


def test_ports_picked_together_are_distinct_and_free():
    picked = ports.free_ports(40)
    assert len(set(picked)) == 40
    for port in picked:                       # each can be bound now, by whoever asked for it
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert taken not in ports.free_ports(200)


def test_the_lab_keeps_its_one_port_call():
    assert deploy.free_port is ports.free_port   # lab 08 calls deploy.free_port()
