"""PEFT's LoraConfig as each end of the supported range knows it: the keyword arguments that
`LoraConfig(**json.load(adapter_config.json))` accepts, and their defaults.

PEFT itself is not installable here, so the field lists are data, copied from PEFT's sources:
- 0.10.0 (March 2024): `src/peft/config.py` (PeftConfigMixin: peft_type, auto_mapping; PeftConfig:
  base_model_name_or_path, revision, task_type, inference_mode) and `src/peft/tuners/lora/config.py` at tag v0.10.0
  (r ... layer_replication). Before 0.14, `PeftConfig.from_pretrained` calls `LoraConfig(**kwargs)` with every key
  of the file, so an unknown key fails with "LoraConfig.__init__() got an unexpected keyword argument".
- newest: `src/peft/tuners/lora/config.py` of the newest release read (0.17, the one with `target_parameters`), plus
  the fields later releases add (eva/corda configs, qalora, alora, arrow_config, ensure_weight_tying, peft_version).
  Since 0.14 unknown keys are dropped with a warning, so the newest list matters for meaning, not for loading.
Rank/alpha pattern keys: PEFT < 0.14 picks a key with `re.match(rf".*\\.{key}$", module)` (a dot must precede the
key); 0.14 and later with `re.match(rf"(.*\\.)?({key})$", module)`.

Run: /usr/bin/python3 tests/Golden/peft/lora_config_fields.py [ADAPTER_DIR ...]
Writes lora_config_fields.json beside it (read by the C# tests, so CI needs no Python) and, given adapter folders,
instantiates each version's LoraConfig field list as a dataclass (unknown keyword = TypeError, as in PEFT 0.10)
with every key of their adapter_config.json.
"""
import dataclasses
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> default (a JSON value; None where PEFT's default is None; {} for default_factory=dict)
PEFT_CONFIG_0_10 = {
    "peft_type": None, "auto_mapping": None, "base_model_name_or_path": None, "revision": None,
    "task_type": None, "inference_mode": False,
}
LORA_0_10 = {
    "r": 8, "target_modules": None, "lora_alpha": 8, "lora_dropout": 0.0, "fan_in_fan_out": False,
    "bias": "none", "use_rslora": False, "modules_to_save": None, "init_lora_weights": True,
    "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {},
    "megatron_config": None, "megatron_core": "megatron.core", "loftq_config": {}, "use_dora": False,
    "layer_replication": None,
}
ADDED_BY_NEWEST = {
    "exclude_modules": None, "trainable_token_indices": None, "eva_config": None, "corda_config": None,
    "use_qalora": False, "qalora_group_size": 16, "runtime_config": {}, "lora_bias": False, "target_parameters": None,
    "alora_invocation_tokens": None, "arrow_config": None, "ensure_weight_tying": False, "peft_version": None,
}
VERSIONS = {
    "0.10.0": {**PEFT_CONFIG_0_10, **LORA_0_10},
    "newest": {**PEFT_CONFIG_0_10, **LORA_0_10, **ADDED_BY_NEWEST},
}
PATTERN_KEY_MATCH = {"0.10.0": r".*\.{key}$", "newest": r"(.*\.)?({key})$"}


def config_class(version):
    fields = [(n, object, dataclasses.field(default=None)) for n in VERSIONS[version]]
    return dataclasses.make_dataclass(f"LoraConfig_{version.replace('.', '_')}", fields)


def pattern_module(version, key, modules):
    return [m for m in modules if re.match(PATTERN_KEY_MATCH[version].format(key=key), m)]


def check_adapter(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    for version in VERSIONS:
        config_class(version)(**cfg)  # TypeError on a field this version does not know
    for key in list((cfg.get("rank_pattern") or {})) + list((cfg.get("alpha_pattern") or {})):
        for version in VERSIONS:
            assert re.match(PATTERN_KEY_MATCH[version].format(key=key), "model." + key), (version, key)
    print(f"{folder}: accepted by PEFT {', '.join(VERSIONS)} ({len(cfg)} fields)")


def main():
    out = {"source": "tests/Golden/peft/lora_config_fields.py", "versions": VERSIONS, "pattern_key_match": PATTERN_KEY_MATCH}
    with open(os.path.join(HERE, "lora_config_fields.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    for folder in sys.argv[1:]:
        check_adapter(folder)


if __name__ == "__main__":
    main()
