"""Microsoft.Network resources a test VM needs: shapes, references, LRO answers."""

from __future__ import annotations

from emulator_helpers import LOCATION, make_network, rg_path

NET_API = {"api-version": "2026-03-01"}


def test_nsg_with_rules_round_trips(clients, rg):
    rule = {
        "name": "ssh",
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "22",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "access": "Allow",
            "priority": 1000,
            "direction": "Inbound",
        },
    }
    path = rg_path(clients, rg) + "/providers/Microsoft.Network/networkSecurityGroups/nsg"
    created = clients.send(
        "PUT", path, {"location": LOCATION, "properties": {"securityRules": [rule]}}, **NET_API
    )
    assert created.status_code == 201
    assert (
        "/providers/Microsoft.Network/locations/westus/operations/"
        in created.headers["Azure-AsyncOperation"]
    )
    nsg = clients.network.network_security_groups.get(rg, "nsg")
    assert nsg.provisioning_state == "Succeeded"
    [ssh] = nsg.security_rules
    assert (ssh.name, ssh.destination_port_range, ssh.priority, ssh.access) == (
        "ssh",
        "22",
        1000,
        "Allow",
    )
    assert ssh.id == path + "/securityRules/ssh"
    assert {r.name for r in nsg.default_security_rules} >= {"DenyAllInBound", "AllowVnetInBound"}
    clash = dict(rule, name="ssh2")
    conflict = clients.send(
        "PUT",
        path,
        {"location": LOCATION, "properties": {"securityRules": [rule, clash]}},
        **NET_API,
    )
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (400, "SecurityRuleConflict")


def test_subnet_get_shows_its_ip_configurations(clients, rg):
    nic = make_network(clients, rg, "box")
    subnet = clients.network.subnets.get(rg, "box-vnet", "default")
    assert subnet.address_prefix == "10.0.0.0/24"
    assert [c.id for c in subnet.ip_configurations] == [nic.ip_configurations[0].id]
    assert nic.ip_configurations[0].private_ip_address.startswith("10.0.0.")
    assert nic.ip_configurations[0].public_ip_address.id.endswith("/publicIPAddresses/box-ip")
    added = clients.network.subnets.begin_create_or_update(
        rg, "box-vnet", "second", {"properties": {"addressPrefix": "10.0.1.0/24"}}
    ).result()
    assert added.name == "second"
    assert [s.name for s in clients.network.subnets.list(rg, "box-vnet")] == ["default", "second"]
    clients.network.subnets.begin_delete(rg, "box-vnet", "second").result()
    missing = clients.send("GET", added.id, **NET_API)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ResourceNotFound")


def test_network_deletes_in_dependency_order(clients, rg):
    make_network(clients, rg, "tmp")
    network = clients.network
    network.network_interfaces.begin_delete(rg, "tmp-nic").result()
    assert network.public_ip_addresses.get(rg, "tmp-ip").ip_configuration is None
    network.public_ip_addresses.begin_delete(rg, "tmp-ip").result()
    network.virtual_networks.begin_delete(rg, "tmp-vnet").result()
    assert list(network.virtual_networks.list(rg)) == []
    gone = clients.send(
        "DELETE",
        rg_path(clients, rg) + "/providers/Microsoft.Network/virtualNetworks/tmp-vnet",
        **NET_API,
    )
    assert gone.status_code == 204
