"""LeRobot checkpoints (ACT and SAC, LeRobot 0.3 and 0.4 layouts) read without LeRobot, for actsac-export.

``reader`` (numpy, safetensors) reads and checks the files; ``models`` are LeRobot's actors at inference in
plain PyTorch; ``convert.load_lerobot`` makes an actsac Checkpoint of them for a robot.
"""
