"""Checks of the maintainer tools (run by hand; CI runs TypeScript only):

    /usr/bin/python3 tools/test_tools.py [FIXTURE_DIR]

FIXTURE_DIR is a UNet2DModel fixture made by diffusers itself (default test/fixtures/unet/tiny-ddpm): the subset in
tools/diffusers_unet.py must load its weights strictly and reproduce diffusers' recorded outputs. The trainer must
refuse bad arguments before doing any work, and an interrupted run must leave nothing behind.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from diffusers_unet import UNet2DModel, full_config  # noqa: E402
import safetensors_io  # noqa: E402

FIXTURE = os.path.join(REPO, "test", "fixtures", "unet", "tiny-ddpm")
TRAIN = [sys.executable, os.path.join(HERE, "train_ddpm.py")]


class DiffusersUNetSubset(unittest.TestCase):
    def test_loads_diffusers_weights_strictly_and_matches_its_outputs(self):
        with open(os.path.join(FIXTURE, "config.json")) as f:
            saved = json.load(f)
        config = {k: v for k, v in saved.items() if not k.startswith("_")}
        self.assertEqual(full_config(**config), config, "every constructor key diffusers saved, and no other")
        model = UNet2DModel(**config).eval()
        weights = safetensors_io.load(os.path.join(FIXTURE, "diffusion_pytorch_model.safetensors"))
        model.load_state_dict(weights, strict=True)
        self.assertEqual(list(model.state_dict()), list(weights), "the state dict's order is diffusers' own")
        io = safetensors_io.load(os.path.join(FIXTURE, "io.safetensors"))
        with torch.no_grad():
            worst = max(
                (model(io["sample"], io["timestep"]) - io["expected"]).abs().max().item(),
                (model(io["sample"], int(io["t_scalar"][0])) - io["expected_t_scalar"]).abs().max().item(),
                (model(io["sample_rect"], io["timestep"]) - io["expected_rect"]).abs().max().item(),
            )
        print(f"max |subset - diffusers| = {worst:.3g}")
        self.assertLess(worst, 1e-5)

    def test_unsupported_config_values_are_refused_by_name(self):
        with self.assertRaisesRegex(ValueError, "Unsupported time_embedding_type 'fourier'"):
            full_config(time_embedding_type="fourier")
        with self.assertRaisesRegex(ValueError, "Unknown UNet2DModel config keys: widths"):
            full_config(widths=[1])


class TrainerArguments(unittest.TestCase):
    def refuse(self, args, message):
        out = os.path.join(tempfile.mkdtemp(), "model")
        run = subprocess.run([*TRAIN, "--out", out, *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn(message, run.stderr)
        self.assertFalse(os.path.exists(out))

    def test_bad_arguments_are_refused(self):
        self.refuse(["--steps", "0"], "--steps must be a positive integer, got 0")
        self.refuse(["--batch", "-4"], "--batch must be a positive integer, got -4")
        self.refuse(["--data", "cifar10"], "unknown data set 'cifar10'")
        self.refuse(["--lr", "nan"], "--lr must be a positive number, got nan")

    def test_an_existing_folder_needs_force(self):
        out = tempfile.mkdtemp()
        run = subprocess.run([*TRAIN, "--out", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 2)
        self.assertIn("exists; pass --force to replace it", run.stderr)

    def test_an_interrupted_run_leaves_nothing(self):
        parent = tempfile.mkdtemp()
        out = os.path.join(parent, "model")
        process = subprocess.Popen([*TRAIN, "--out", out, "--steps", "100000", "--threads", "1", "--log-every", "1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # interrupt once training runs: the temporary folder exists and holds the exported data law
        for line in process.stdout:
            if line.startswith("step "):
                break
        self.assertTrue(any(name.startswith(".model.tmp-") for name in os.listdir(parent)))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 130, err)
        self.assertIn("interrupted: nothing written", err)
        self.assertEqual(os.listdir(parent), [], "no checkpoint and no temporary folder")


if __name__ == "__main__":
    if len(sys.argv) > 1 and os.path.isdir(sys.argv[1]):
        FIXTURE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
