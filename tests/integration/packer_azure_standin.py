"""A stand-in for ``packer`` on the azure target: what Packer's azure-arm builder does to ARM.

Packer's azure-arm builder needs Azure, which these tests do not have; they have the sandbox's
ARM emulator. test_azure_target.py puts this program in place of the ``packer`` binary
(``imageforge.packer.Packer(binary=<wrapper>)``, a two-line shell script that runs it with this
Python) so that ``imageforge.pipeline.build.build_one(target="azure")`` runs unchanged.

``packer build [-color=false] [-on-error=M] -only=<build>.azure-arm.<source> -var=k=v... DIR``

reads DIR's rendered ``*.pkr.hcl`` as Packer does (variable defaults, ``-var`` overrides,
locals; the few expressions the templates use: ``var.x``, ``local.x``, ``env("X")``,
``replace(a, "b", "c")``; anything else fails loudly), picks the source ``-only`` names (none:
"Builds finished but no artifacts were created", exit 0, as Packer 1.6.6 does) and then makes
the ARM calls azure-arm makes, with the real SDK against the emulator:

1. authenticate: ``use_azure_cli_auth``, or ``client_id`` and ``client_secret`` (their
   defaults read ARM_CLIENT_ID/ARM_CLIENT_SECRET; never the command line); then azure-arm's
   checks, with its messages: the gallery image definition exists; on builtin no managed image
   of that name exists (``-force`` would delete it); on plugin the version does not exist;
2. a temporary resource group ``pkr-Resource-Group-<random>`` with a network and a build VM
   from the source's marketplace image, size, region, os_type and TrustedLaunch settings, all
   tagged with ``azure_tags`` (Packer deploys these as one ARM template; the emulator serves
   no deployments, so they are created one by one);
3. the provisioners: not run (the scripts must exist, as Packer checks them);
4. deallocate and generalize the VM;
5. builtin (``managed_image_name`` set, Packer 1.6.6): a managed image of the VM in
   ``managed_image_resource_group_name``, then the gallery image version from it
   (``storageProfile.source.id``). plugin (azure plugin >= 2, no managed image): the version
   straight from the VM (``source.virtualMachineId``). Either way the version is created in the
   build region, tagged ``azure_tags``, with ``excludeFromLatest`` and the replica count and
   regions (``replication_regions`` or ``target_region``) of ``shared_image_gallery_destination``;
6. delete the temporary resource group (also when a step failed, unless ``-on-error=abort``);
7. the manifest post-processor: append the build to ``builds[]`` of its ``output`` (relative to
   the working directory) and set ``last_run_uuid``, as Packer's manifest does; ``artifact_id``
   is the managed image id on builtin and the gallery image version id on plugin.

``packer version`` prints ``Packer v<IMAGEFORGE_STANDIN_PACKER_VERSION>`` (default: the real
Packer's answer). Any other command runs the real Packer (IMAGEFORGE_STANDIN_REAL_PACKER,
default /usr/bin/packer) with the same arguments.

Environment the tests set: IMAGEFORGE_STANDIN_ARM_URL and IMAGEFORGE_STANDIN_ARM_CA (the
emulator and its CA), IMAGEFORGE_STANDIN_RECORD (a file: one JSON line per invocation, argv and
working directory), IMAGEFORGE_STANDIN_FAIL: ``provision`` (the build fails after the build VM
is up, as a failing provisioner would) or ``after-capture`` (builtin: the build is cancelled
right after the managed image was captured, as a timeout or Ctrl-C there would; Packer keeps
the managed image, which is an artifact, and deletes only its temporary resource group).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REAL_PACKER = os.environ.get("IMAGEFORGE_STANDIN_REAL_PACKER", "/usr/bin/packer")
_REF = re.compile(r"^(var|local)\.([A-Za-z0-9_-]+)$")
_ENV = re.compile(r'^env\("([^"]*)"\)$')
_REPLACE = re.compile(r'^replace\((.+), "([^"]*)", "([^"]*)"\)$')
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")


class BuildError(Exception):
    """The build failed; Packer prints it and exits 1."""


def say(name: str, message: str) -> None:
    print(f"==> {name}: {message}", flush=True)


# -- reading the rendered folder as Packer does ----------------------------------------------


class Template:
    """The variables, locals, sources and builds of one folder of ``*.pkr.hcl``."""

    def __init__(self, directory: Path, overrides: dict[str, str]) -> None:
        from imageforge import hclio

        self.blocks: dict[str, list[Any]] = {}
        for path in sorted(directory.glob("*.pkr.hcl")):
            for key, value in hclio.load(path).items():
                self.blocks.setdefault(key, []).extend(value)
        self.declared: dict[str, dict[str, Any]] = {}
        for item in self.blocks.get("variable", []):
            self.declared.update(item)
        unknown = sorted(set(overrides) - set(self.declared))
        if unknown:
            raise BuildError(
                f'Error: Undefined -var variable: A "{unknown[0]}" variable was passed in but '
                "was not found in known variables."
            )
        self.overrides = overrides
        self.raw_locals: dict[str, Any] = {}
        for item in self.blocks.get("locals", []):
            self.raw_locals.update(item)
        self._locals: dict[str, Any] = {}

    def var(self, name: str) -> Any:
        if name not in self.declared:
            raise BuildError(f"Error: Reference to undeclared input variable var.{name}")
        spec = self.declared[name]
        if name in self.overrides:
            raw: Any = self.overrides[name]
        elif "default" in spec:
            raw = self.evaluate(spec["default"])
        else:
            raise BuildError(f'Error: Unset variable "{name}": a value must be given (-var).')
        kind = str(spec.get("type", "string")).strip("${}")
        if kind == "bool" and isinstance(raw, str):
            if raw not in ("true", "false"):
                raise BuildError(f"Error: variable {name}: a bool is required, not {raw!r}")
            return raw == "true"
        if kind == "number" and isinstance(raw, str):
            return int(raw)
        return raw

    def local(self, name: str) -> Any:
        if name not in self._locals:
            if name not in self.raw_locals:
                raise BuildError(f"Error: Reference to undeclared local value local.{name}")
            self._locals[name] = self.evaluate(self.raw_locals[name])
        return self._locals[name]

    def expression(self, text: str) -> Any:
        text = text.strip()
        ref = _REF.match(text)
        if ref:
            return self.var(ref[2]) if ref[1] == "var" else self.local(ref[2])
        env = _ENV.match(text)
        if env:
            return os.environ.get(env[1], "")
        replace = _REPLACE.match(text)
        if replace:
            return str(self.expression(replace[1])).replace(replace[2], replace[3])
        raise BuildError(f"the stand-in cannot evaluate the expression {text!r}")

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.evaluate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _INTERPOLATION.fullmatch(value)
        if whole:
            return self.expression(whole[1])
        return _INTERPOLATION.sub(lambda m: str(self.expression(m[1])), value)

    def source(self, kind: str, name: str) -> dict[str, Any] | None:
        for item in self.blocks.get("source", []):
            found = item.get(kind, {}).get(name)
            if found is not None:
                return dict(found)
        return None

    def build(self, name: str) -> dict[str, Any] | None:
        return next((b for b in self.blocks.get("build", []) if b.get("name") == name), None)


def parse_build_args(argv: list[str]) -> tuple[dict[str, str], dict[str, str], Path]:
    """(options, -var values, folder) of ``packer build`` arguments."""
    options: dict[str, str] = {}
    variables: dict[str, str] = {}
    rest = []
    for arg in argv:
        if arg.startswith("-var="):
            key, _, value = arg[len("-var=") :].partition("=")
            variables[key] = value
        elif arg.startswith("-"):
            key, _, value = arg.lstrip("-").partition("=")
            options[key] = value
        else:
            rest.append(arg)
    if len(rest) != 1:
        raise BuildError("Error: packer build takes exactly one template folder")
    return options, variables, Path(rest[0])


# -- the ARM calls of azure-arm ------------------------------------------------------------


class Credential:
    """Any bearer token is good for the emulator (Packer would get one from Azure AD)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("packer-standin", int(time.time()) + 3600)


def clients(subscription: str) -> tuple[Any, Any, Any]:
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    options = {
        "base_url": os.environ["IMAGEFORGE_STANDIN_ARM_URL"],
        "connection_verify": os.environ["IMAGEFORGE_STANDIN_ARM_CA"],
    }
    credential = Credential()
    return (
        ResourceManagementClient(credential, subscription, **options),
        NetworkManagementClient(credential, subscription, **options),
        ComputeManagementClient(credential, subscription, **options),
    )


def authenticate(config: dict[str, Any]) -> None:
    if config.get("use_azure_cli_auth") is True:
        return
    if not (config.get("client_id") and config.get("client_secret")):
        raise BuildError(
            "No valid credential types found: set use_azure_cli_auth, or client_id and "
            "client_secret (ARM_CLIENT_ID / ARM_CLIENT_SECRET)"
        )


def preflight(config: dict[str, Any], arm: tuple[Any, Any, Any], force: bool) -> None:
    """What azure-arm checks before it creates anything (its messages)."""
    from azure.core.exceptions import ResourceNotFoundError

    compute = arm[2]
    destination = (config.get("shared_image_gallery_destination") or [{}])[0]
    group, gallery = destination["resource_group"], destination["gallery_name"]
    try:
        compute.gallery_images.get(group, gallery, destination["image_name"])
    except ResourceNotFoundError:
        raise BuildError(
            "the Shared Gallery Image to which to publish the managed image version to does not "
            f"exist in the resource group {group}"
        ) from None
    managed = config.get("managed_image_name")
    if managed:
        managed_group = config["managed_image_resource_group_name"]
        try:
            compute.images.get(managed_group, managed)
        except ResourceNotFoundError:
            return
        if not force:
            raise BuildError(
                f"the managed image named {managed} already exists in the resource group "
                f"{managed_group}, use the -force option to automatically delete it."
            )
        compute.images.begin_delete(managed_group, managed).result()
        return
    try:
        compute.gallery_image_versions.get(
            group, gallery, destination["image_name"], destination["image_version"]
        )
    except ResourceNotFoundError:
        return
    raise BuildError(
        f"a gallery image version for image name:version {destination['image_name']}:"
        f"{destination['image_version']} already exists in gallery {gallery}"
    )


def fail_point(step: str, message: str) -> None:
    """IMAGEFORGE_STANDIN_FAIL=<step>: the build fails there."""
    if os.environ.get("IMAGEFORGE_STANDIN_FAIL") == step:
        raise BuildError(message)


def build_vm(name: str, config: dict[str, Any], arm: tuple[Any, Any, Any], group: str) -> Any:
    resource, network, compute = arm
    location = config["location"]
    tags = config.get("azure_tags") or {}
    say(name, f"Creating resource group {group} ...")
    resource.resource_groups.create_or_update(group, {"location": location, "tags": tags})
    say(name, "Deploying the build VM (network, public IP, NIC, VM) ...")
    vnet = network.virtual_networks.begin_create_or_update(
        group,
        "pkrvn",
        {
            "location": location,
            "tags": tags,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "pkrsn", "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        },
    ).result()
    pip = network.public_ip_addresses.begin_create_or_update(
        group, "pkrip", {"location": location, "tags": tags, "sku": {"name": "Standard"}}
    ).result()
    nic = network.network_interfaces.begin_create_or_update(
        group,
        "pkrni",
        {
            "location": location,
            "tags": tags,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig",
                        "properties": {
                            "subnet": {"id": vnet.subnets[0].id},
                            "publicIPAddress": {"id": pip.id},
                        },
                    }
                ]
            },
        },
    ).result()
    properties: dict[str, Any] = {
        "hardwareProfile": {"vmSize": config["vm_size"]},
        "storageProfile": {
            "imageReference": {
                "publisher": config["image_publisher"],
                "offer": config["image_offer"],
                "sku": config["image_sku"],
                "version": config.get("image_version", "latest"),
            },
            "osDisk": {"osType": config["os_type"], "createOption": "FromImage"},
        },
        "osProfile": {
            "computerName": "pkrvm",
            "adminUsername": config.get("ssh_username", "packer"),
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {
                            "path": f"/home/{config.get('ssh_username', 'packer')}/.ssh/"
                            "authorized_keys",
                            "keyData": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPackerStandin "
                            "packer@standin",
                        }
                    ]
                },
            },
        },
        "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
    }
    if config.get("security_type"):
        properties["securityProfile"] = {
            "securityType": config["security_type"],
            "uefiSettings": {
                "secureBootEnabled": bool(config.get("secure_boot_enabled")),
                "vTpmEnabled": bool(config.get("vtpm_enabled")),
            },
        }
    return compute.virtual_machines.begin_create_or_update(
        group, "pkrvm", {"location": location, "tags": tags, "properties": properties}
    ).result()


def check_provisioners(build: dict[str, Any]) -> None:
    for provisioner in build.get("provisioner", []):
        for settings in provisioner.values():
            scripts = list(settings.get("scripts") or []) + [settings.get("script")]
            for script in filter(None, scripts):
                if not Path(script).is_file():
                    raise BuildError(f"Error: Bad script '{script}': no such file")


def publish(
    name: str, config: dict[str, Any], arm: tuple[Any, Any, Any], vm: Any
) -> tuple[str, str]:
    """(artifact id, version id): what azure-arm creates after generalizing the VM."""
    _resource, _network, compute = arm
    destination = (config.get("shared_image_gallery_destination") or [{}])[0]
    location = config["location"]
    tags = config.get("azure_tags") or {}
    source: dict[str, Any]
    managed_id = None
    if config.get("managed_image_name"):
        group = config["managed_image_resource_group_name"]
        say(name, f"Capturing the managed image {config['managed_image_name']} in {group} ...")
        managed = compute.images.begin_create_or_update(
            group,
            config["managed_image_name"],
            {
                "location": location,
                "tags": tags,
                "properties": {"sourceVirtualMachine": {"id": vm.id}},
            },
        ).result()
        managed_id = str(managed.id)
        fail_point("after-capture", "Build was cancelled.")
        source = {"id": managed_id}
    else:
        source = {"virtualMachineId": vm.id}
    if "replication_regions" in destination:
        targets = [{"name": r} for r in destination["replication_regions"]]
    else:
        targets = [
            {
                "name": t["name"],
                "regionalReplicaCount": t.get("replicas", 1),
                **(
                    {"storageAccountType": destination["storage_account_type"]}
                    if destination.get("storage_account_type")
                    else {}
                ),
            }
            for t in destination.get("target_region", [])
        ]
    publishing = {
        "targetRegions": targets,
        "excludeFromLatest": bool(config.get("shared_gallery_image_version_exclude_from_latest")),
        "replicaCount": int(config.get("shared_image_gallery_replica_count") or 1),
    }
    say(
        name,
        f"Publishing version {destination['image_version']} of {destination['image_name']} to "
        f"gallery {destination['gallery_name']} ...",
    )
    version = compute.gallery_image_versions.begin_create_or_update(
        destination["resource_group"],
        destination["gallery_name"],
        destination["image_name"],
        destination["image_version"],
        {
            "location": location,
            "tags": tags,
            "properties": {"publishingProfile": publishing, "storageProfile": {"source": source}},
        },
    ).result()
    say(name, f" -> Shared Gallery Image Version ID : '{version.id}'")
    return (managed_id or str(version.id)), str(version.id)


def write_manifest(
    build: dict[str, Any], template: Template, full_name: str, artifact_id: str, run_uuid: str
) -> None:
    for post in build.get("post-processor", []):
        manifest = post.get("manifest")
        if manifest is None:
            continue
        output = Path(template.evaluate(manifest.get("output", "packer-manifest.json")))
        data: dict[str, Any] = {"builds": [], "last_run_uuid": ""}
        if output.exists():
            data = json.loads(output.read_text(encoding="utf-8"))
        data["builds"].append(
            {
                "name": full_name.rsplit(".", 1)[-1],
                "builder_type": "azure-arm",
                "build_time": int(time.time()),
                "files": None,
                "artifact_id": artifact_id,
                "packer_run_uuid": run_uuid,
                "custom_data": template.evaluate(manifest.get("custom_data") or {}),
            }
        )
        data["last_run_uuid"] = run_uuid
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build(argv: list[str]) -> int:
    options, variables, directory = parse_build_args(argv)
    template = Template(directory, variables)
    only = options.get("only", "")
    build_name, _, rest = only.partition(".")
    kind, _, source_name = rest.partition(".")
    block = template.build(build_name)
    raw = template.source(kind, source_name) if kind == "azure-arm" else None
    if block is None or raw is None or f"source.{kind}.{source_name}" not in block["sources"]:
        print("\n==> Wait completed after 3 microseconds\n", flush=True)
        print("==> Builds finished but no artifacts were created.", flush=True)
        return 0
    name = only
    print(f"{name}: output will be in this color.\n", flush=True)
    config = template.evaluate(raw)
    started = time.monotonic()
    group = f"pkr-Resource-Group-{uuid.uuid4().hex[:10]}"
    arm: tuple[Any, Any, Any] | None = None
    try:
        authenticate(config)
        check_provisioners(block)
        arm = clients(config["subscription_id"])
        say(name, "Running builder ...")
        preflight(config, arm, force="force" in options)
        vm = build_vm(name, config, arm, group)
        say(name, "Provisioning with shell script: provisioners/linux/install-updates.sh")
        fail_point(
            "provision", "Script exited with non-zero exit status: 100. Allowed exit codes are: [0]"
        )
        say(name, "Powering off machine ...")
        arm[2].virtual_machines.begin_deallocate(group, "pkrvm").result()
        say(name, "Generalizing machine ...")
        arm[2].virtual_machines.generalize(group, "pkrvm")
        artifact_id, _version_id = publish(name, config, arm, vm)
    except BuildError as err:
        failed = f"{time.monotonic() - started:.0f} seconds"
        if arm is not None and options.get("on-error") != "abort":
            cleanup(name, arm, group)
        print(f"Build '{name}' errored after {failed}: {err}", flush=True)
        print("\n==> Some builds didn't complete successfully and had errors:", flush=True)
        print(f"--> {name}: {err}", flush=True)
        print("\n==> Builds finished but no artifacts were created.", flush=True)
        return 1
    except Exception as err:  # an ARM error: Packer prints it and cleans up
        if options.get("on-error") != "abort":
            cleanup(name, arm, group)
        print(f"Build '{name}' errored: {type(err).__name__}: {err}", flush=True)
        return 1
    cleanup(name, arm, group)
    write_manifest(block, template, name, artifact_id, str(uuid.uuid4()))
    print(f"Build '{name}' finished.\n", flush=True)
    print("==> Builds finished. The artifacts of successful builds are:", flush=True)
    print(f"--> {name}: Azure.ResourceManagement.VMImage:\n\n{artifact_id}", flush=True)
    return 0


def cleanup(name: str, arm: tuple[Any, Any, Any] | None, group: str) -> None:
    if arm is None:
        return
    resource = arm[0]
    if resource.resource_groups.check_existence(group):
        say(name, f"Deleting resource group {group} ...")
        resource.resource_groups.begin_delete(group).result()


def record(argv: list[str]) -> None:
    path = os.environ.get("IMAGEFORGE_STANDIN_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")


def main(argv: list[str]) -> int:
    record(argv)
    if argv[:1] == ["version"] and os.environ.get("IMAGEFORGE_STANDIN_PACKER_VERSION"):
        print(f"Packer v{os.environ['IMAGEFORGE_STANDIN_PACKER_VERSION']}", flush=True)
        return 0
    if argv[:1] != ["build"]:
        os.execv(REAL_PACKER, [REAL_PACKER, *argv])
    try:
        return build(argv[1:])
    except BuildError as err:
        print(str(err), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
