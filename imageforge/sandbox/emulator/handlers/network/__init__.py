"""Microsoft.Network: what a test VM needs, with ARM's reference checks.

- ``base``: the resource types' shared PUT/GET/list/DELETE, ids, references, back-references;
- ``vnets``: virtual networks and their subnets (also served on their own routes);
- ``nsgs``: network security groups, their rules and Azure's default rules;
- ``publicips``: public IP addresses (a booted VM's endpoint shows on them);
- ``nics``: network interfaces and their attachment to virtual machines.

Writes are long-running operations (201/200 + Azure-AsyncOperation), deletes answer 202 (or
204 when there is nothing to delete). A public IP attached to a booted VM's NIC shows the VM's
loopback address as ``ipAddress`` and its sshd port in the tag ``imageforge.sandbox-ssh-port``.
"""
