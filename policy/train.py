"""The training loop: BC warm start on demonstrations, then SAC + BC with online data, on a built-in task:
so100-reach (the goal in the state) or so100-visual-reach (the goal only in the simulator's camera image).

``TrainConfig`` holds every setting (its field help is the ``actsac-train`` help); ``train(config)`` runs it,
evaluates every ``eval_every`` updates, and writes the checkpoint (atomically), a metrics CSV and a learning
curve PNG next to it. Every RNG is seeded from ``config.seed``. Ctrl-C stops early and still writes the
checkpoint of the best evaluated actor so far; before the first evaluation, the actor of the last whole update
is evaluated once and saved with its score (before the first whole update, nothing is written).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from actsac.ensemble import ChunkExecutor
from actsac.files import atomic_write
from actsac.options import (AT_LEAST_0, AT_LEAST_1, FINITE, FRACTION, NON_NEGATIVE, POSITIVE, OptionError,
                            check_options, option)

from . import tasks
from .actors import Actor, Normalizer, build_actor
from .checkpoint import save_checkpoint
from .config import IMAGENET_MEAN, IMAGENET_STD, CameraConfig, ConfigError, NormStats, PolicyConfig
from .demos import load_npz_demos, report_rest_offsets
from .replay import Episode, SequenceReplay, sample_batch
from .sac import BCSchedule, SACLearner


CONTROL_HZ = 30.0  # the tasks' control rate (the simulator's servo dynamics are stepped at it)
TASKS = {tasks.TASK_NAME: tasks.ReachTask, tasks.VISUAL_TASK_NAME: tasks.VisualReachTask,
         tasks.UPPER_BODY_TASK_NAME: tasks.UpperBodyReachTask}


@dataclass
class TrainConfig:
    """Every setting of a training run (each field's help is its ``actsac-train`` option's help). The defaults
    are the README demo's budget: ~45 s on 2 CPU cores for the small ACT actor, 1000 BC warm-start updates then
    500 SAC + BC updates. The BC weight is large because it multiplies a per-dimension MSE (~1e-3 at
    convergence) and, by default, the batch's mean |Q|: it keeps SAC's action gradient from dragging the actor
    away from the demonstrations while the critic is still young."""

    task: str = option("so100-reach", "built-in task to train on: so100-reach (the goal is in the state), "
                                      "so100-visual-reach (the goal is only in the camera image) or upper-body-reach "
                                      "(the upper body's 32 joints on three buses, arm / torso / hand heads)",
                       choices=list(TASKS))
    actor: str = option("act", "actor type: decoder-only ACT transformer or the MLP baseline", choices=["act", "mlp"])
    preset: str = option("small", "actor size preset (small: demos and tests; default: the seed design's scale)",
                       choices=["small", "default"])
    history: int | None = option(None, "observation window T > 1 for the history actor; unset: one observation",
                               AT_LEAST_1)
    chunk_size: int = option(10, "H: actions per chunk, also the critic's backup horizon", AT_LEAST_1)
    image_encoder: str = option("small_cnn", "camera tasks: the actor's image encoder (small_cnn trains on a CPU "
                                             "in minutes; resnet18 as ACT uses it, with ImageNet statistics)",
                                choices=["small_cnn", "resnet18"])
    image_size: tuple[int, ...] = option((48, 64), "camera tasks: image height and width in pixels",
                                         (lambda v: v >= 16, "must be >= 16"), nargs=2, type=int,
                                         metavar=("H", "W"))
    images: bool = option(True, "camera tasks: the actor sees the camera; --no-images trains a state-only actor, "
                                "blind to the goal (the baseline)")
    steps: int = option(1500, "gradient updates in total (BC warm start included)", AT_LEAST_1)
    seed: int = option(0, "seed of every random number generator")
    bc_only: bool = option(False, "behaviour cloning only: no critic, no online data")
    demos: str | None = option(None, "demonstrations .npz file (layout in actsac.policy.demos); unset: the "
                                   "task's scripted expert. Reports each joint's mean command - state gap on "
                                   "frames at rest and warns above 2 %% of the joint's range (leader and "
                                   "follower calibrated differently; a gripper holding an object may differ)")
    out: str = option("model.pt", "checkpoint path; the metrics CSV and curve PNG are written next to it")
    demo_episodes: int = option(48, "episodes of the scripted expert used as demonstrations", AT_LEAST_1)
    n_envs: int = option(8, "environments stepped in lockstep for online data", AT_LEAST_1)
    episode_s: float = option(2.0, "episode length in seconds (time limit, no terminal)", POSITIVE)
    n_goals: int = option(8, "size of the fixed, seeded goal set stored in the checkpoint", AT_LEAST_1)
    success_tolerance: float = option(4.0, "success: every joint within this many user units of the goal",
                                    NON_NEGATIVE)
    online_start: int = option(1000, "BC warm start: updates on demonstrations only, the actor trained by BC alone "
                                  "(the critic already learns), before online collection and the SAC term start",
                                  AT_LEAST_0)
    batch_size: int = option(128, "chunks per update (half demonstrations, half online once there are any)",
                           AT_LEAST_1)
    gamma: float = option(0.99, "discount per control tick", FRACTION)
    tau: float = option(0.005, "Polyak rate of the target critics", FRACTION)
    actor_lr: float = option(1e-3, "actor learning rate (Adam)", POSITIVE)
    critic_lr: float = option(1e-3, "critic learning rate (Adam)", POSITIVE)
    alpha_lr: float = option(3e-4, "temperature learning rate (Adam)", POSITIVE)
    n_critics: int = option(2, "critic ensemble size", AT_LEAST_1)
    critic_hidden: tuple[int, ...] = option((256, 256), "critic MLP widths (LayerNorm after each)", AT_LEAST_1)
    q_aggregate: str = option("min", "how the actor and the backup combine the ensemble", choices=["min", "mean"])
    init_temperature: float = option(0.01, "initial entropy temperature alpha", POSITIVE)
    target_entropy: float | None = option(None, "entropy target; unset: -0.5 * H * A", FINITE)
    bc_loss: str = option("mse", "BC term: MSE of the deterministic chunk, or the demo chunk's NLL",
                        choices=["mse", "nll"])
    bc_schedule: str = option("linear", "decay of the BC weight", choices=["constant", "linear", "exponential"])
    bc_start: float = option(1000.0, "BC weight at the first update (times mean |Q| with --bc-relative-to-q)",
                           NON_NEGATIVE)
    bc_end: float = option(200.0, "BC weight at the end of the decay", NON_NEGATIVE)
    bc_relative_to_q: bool = option(True, "scale the BC weight by the batch's mean |Q| (TD3+BC style)")
    bc_decay_steps: int | None = option(None, "updates over which the BC weight decays; unset: --steps", AT_LEAST_1)
    threads: int = option(1, "torch intra-op threads (1 is fastest for the small preset on a busy 2-core "
                           "machine; 0 keeps torch's default)", AT_LEAST_0)
    eval_every: int = option(250, "updates between evaluations (one episode per goal, deterministic actor)",
                           AT_LEAST_1)
    save_best: bool = option(True, "save the best evaluated actor instead of the last one")

    def validate(self) -> None:
        """Refuse a setting out of its range before any work, naming its option (ConfigError)."""
        def refuse(name: str, message: str):
            return ConfigError(f"--{name.replace('_', '-')}: {message}")

        try:
            check_options(self)
        except OptionError as exc:
            raise ConfigError(str(exc)) from None
        ticks = int(round(self.episode_s * CONTROL_HZ))
        if ticks < self.chunk_size:
            raise refuse("episode_s", f"{self.episode_s:g} s is {ticks} ticks at {CONTROL_HZ:g} Hz, fewer than the "
                                      f"chunk size {self.chunk_size}")
        if len(self.image_size) != 2:
            raise refuse("image_size", f"needs a height and a width (got {self.image_size})")
        try:
            BCSchedule(self.bc_schedule, self.bc_start, self.bc_end, self.bc_decay_steps or self.steps)
        except ValueError as exc:
            raise refuse("bc_schedule", str(exc)) from None

    @property
    def sees_images(self) -> bool:
        return self.task == tasks.VISUAL_TASK_NAME and self.images

    def policy_config(self, image_stats: tuple[list[float], list[float]] | None = None) -> PolicyConfig:
        """The actor for the task: the robot's joints in their groups and units (one mean / log-std head per
        group), min/max stats from the joint ranges. so100-reach and upper-body-reach observe positions and goals;
        so100-visual-reach positions (6) and, with ``images``, the camera, normalised with ``image_stats`` (mean,
        std per channel; ImageNet's when None)."""
        robot = self.robot
        names = tasks.VISUAL_OBSERVATION_NAMES if self.task == tasks.VISUAL_TASK_NAME else robot.observation_names
        repeats = len(names) // len(robot.joints)
        mean, std = image_stats or (IMAGENET_MEAN, IMAGENET_STD)
        cameras = [CameraConfig(tasks.CAMERA_NAME, *self.image_size, mean, std)] if self.sees_images else []
        low, high = robot.joint_low, robot.joint_high
        return PolicyConfig.from_preset(
            self.preset, state_dim=len(names), actor=self.actor, history=self.history,
            chunk_size=self.chunk_size, action_groups=robot.action_groups,
            obs_stats=NormStats.min_max(np.tile(low, repeats), np.tile(high, repeats)),
            action_stats=NormStats.min_max(low, high),
            control_hz=CONTROL_HZ, observation_names=list(names), cameras=cameras, image_encoder=self.image_encoder)

    @property
    def robot(self) -> tasks.ReachRobot:
        return TASKS[self.task].robot

    def make_task(self, n_envs: int, goals: np.ndarray, seed: int) -> tasks.ReachTask:
        kwargs = {"image_size": tuple(self.image_size)} if self.task == tasks.VISUAL_TASK_NAME else {}
        return TASKS[self.task](n_envs, goals, seed=seed, control_hz=CONTROL_HZ, episode_s=self.episode_s,
                                success_tolerance=self.success_tolerance, **kwargs)


class ChunkRunner:
    """Acts in lockstep envs from an actor: keeps each env's observation window (T steps, the first one
    repeated at the start) and runs each chunk open loop for H ticks (Q-chunking), through the runtime's own
    ``ChunkExecutor`` (the n envs' chunks side by side as one (H, n * A) chunk)."""

    def __init__(self, actor: Actor, deterministic: bool, generator: torch.Generator | None = None):
        self.actor, self.deterministic, self.generator = actor, deterministic, generator
        config = actor.config
        self.history = config.history if config.uses_history else 1
        self.executor = ChunkExecutor(config.chunk_size, config.chunk_size)
        self.window = self.images = None
        self.tick = 0

    def reset(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None) -> None:
        self.window, self.images = np.repeat(obs[:, None], self.history, axis=1), images
        self.executor.reset()
        self.tick = 0

    def observe(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None) -> None:
        self.window, self.images = np.concatenate([self.window[:, 1:], obs[:, None]], axis=1), images

    def __call__(self) -> np.ndarray:
        """The normalised action (n_envs, A) for this tick."""
        n_envs = self.window.shape[0]
        if self.executor.needs_chunk(self.tick, lead_ticks=0):
            obs = torch.from_numpy(self.window if self.history > 1 else self.window[:, -1])
            images = None
            if self.actor.config.cameras:
                images = {name: torch.from_numpy(self.images[name]) for name in self.actor.config.camera_names}
            with torch.no_grad():
                chunk = (self.actor.deterministic(obs, images) if self.deterministic
                         else self.actor.sample(obs, images, self.generator)[0]).numpy()  # (n, H, A)
            self.executor.add_chunk(chunk.transpose(1, 0, 2).reshape(chunk.shape[1], -1), self.tick)
        action = self.executor.action_at(self.tick).reshape(n_envs, -1).astype(np.float32)
        self.tick += 1
        return action


class ExpertAgent:
    """The task's scripted expert behind the same agent interface (reset / observe / call). It is privileged:
    it reads each env's goal from the task, where a camera task's policy only sees it in the image."""

    def __init__(self, task: tasks.ReachTask, action_norm: Normalizer):
        self.task, self.action_norm, self.obs = task, action_norm, None

    def reset(self, obs: np.ndarray, images=None) -> None:
        self.obs = obs

    observe = reset

    def __call__(self) -> np.ndarray:
        action = self.task.expert(self.obs[:, :self.task.n_joints]).astype(np.float32)
        with torch.no_grad():
            action = self.action_norm(torch.from_numpy(action)).numpy()
        return np.clip(action, -1.0, 1.0)


class Collector:
    """Steps lockstep envs with an agent, one tick per ``step()``; returns the episodes it finishes."""

    def __init__(self, task: tasks.ReachTask, agent, action_norm: Normalizer, images: bool = False):
        self.task, self.agent, self.action_norm, self.with_images = task, agent, action_norm, images
        self.env_steps = 0
        self.obs = None
        self.last_success = self.last_return = None

    def _images(self) -> dict[str, np.ndarray] | None:
        return self.task.images() if self.with_images else None

    def step(self, goal_index=None) -> list[Episode]:
        if self.obs is None:
            self.obs, self.frames = [self.task.reset(goal_index)], [self._images()]
            self.actions, self.rewards = [], []
            self.agent.reset(self.obs[0], self.frames[0])
        action = np.ascontiguousarray(self.agent(), dtype=np.float32)
        with torch.no_grad():
            robot = self.action_norm.inverse(torch.from_numpy(action)).numpy()
        obs, reward, success = self.task.step(robot)
        images = self._images()
        self.agent.observe(obs, images)
        self.obs.append(obs), self.frames.append(images), self.actions.append(action), self.rewards.append(reward)
        self.env_steps += self.task.n_envs
        if not self.task.done:
            return []
        o, a, r = np.stack(self.obs, 1), np.stack(self.actions, 1), np.stack(self.rewards, 1)
        frames = None
        if self.frames[0] is not None:  # {camera: (n_envs, L + 1, H, W, 3)}
            frames = {name: np.stack([f[name] for f in self.frames], 1) for name in self.frames[0]}
        self.obs = self.frames = None
        self.last_success, self.last_return = success, r.sum(1)
        return [Episode(o[i], a[i], r[i], images=None if frames is None else {k: v[i] for k, v in frames.items()})
                for i in range(self.task.n_envs)]

    def episode(self, goal_index=None) -> list[Episode]:
        """Run one whole lockstep episode (from a fresh reset)."""
        self.obs = None
        while not (episodes := self.step(goal_index)):
            pass
        return episodes


def image_statistics(episodes: list[Episode], camera: str) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a camera's frames in [0, 1] pixel units (std at least 1e-3)."""
    frames = np.concatenate([episode.images[camera][::5] for episode in episodes])  # every 5th frame is plenty
    pixels = frames.reshape(-1, 3).astype(np.float32) / 255.0
    return pixels.mean(0).round(4).tolist(), np.maximum(pixels.std(0), 1e-3).round(4).tolist()


def expert_episodes(task: tasks.ReachTask, n_episodes: int, action_norm: Normalizer,
                    images: bool = False) -> list[Episode]:
    """Demonstrations from the scripted expert (actions normalised and clipped to [-1, 1]), with the camera
    images when ``images``."""
    collector, episodes = Collector(task, ExpertAgent(task, action_norm), action_norm, images), []
    while len(episodes) < n_episodes:
        episodes += collector.episode()
    return episodes[:n_episodes]


def evaluate(actor: Actor, task: tasks.ReachTask, seed: int) -> dict[str, float]:
    """One deterministic episode per env, the goals taken in turn (each goal once when n_envs = n_goals), from
    start poses drawn from ``seed``, so every evaluation with the same seed starts alike."""
    task.rng = np.random.default_rng(seed)
    collector = Collector(task, ChunkRunner(actor, deterministic=True), actor.action_norm, bool(actor.config.cameras))
    collector.episode(goal_index=np.arange(task.n_envs) % len(task.goals))
    return {"eval/success_rate": float(collector.last_success.mean()),
            "eval/return": float(collector.last_return.mean())}


def sac_ran(config: TrainConfig, updates: int) -> bool:
    return not config.bc_only and updates > config.online_start


def run_kind(config: TrainConfig, updates: int) -> str:
    """What ``updates`` updates train: SAC + BC only past the BC warm start (--online-start)."""
    if config.bc_only:
        return "BC only"
    if not sac_ran(config, updates):
        return (f"BC only: SAC starts after update {config.online_start} (--online-start), beyond these {updates} "
                f"updates")
    return f"SAC + BC (after {config.online_start} BC-only updates)" if config.online_start else "SAC + BC"


EVAL_KEYS = ("eval/success_rate", "eval/return")
CSV_COLUMNS = ["step", "env_steps", "wall_s", "losses/critic", "losses/actor", "losses/sac", "losses/bc",
               "charts/bc_weight", "charts/alpha", "charts/entropy", "charts/q", "eval/success_rate", "eval/return"]


@dataclass
class TrainResult:
    actor: Actor
    checkpoint: Path
    metrics: list[dict]
    wall_s: float
    interrupted: bool
    best: dict
    critic_params: int | None  # None for BC only


def side_paths(out: Path) -> tuple[Path, Path]:
    """model.pt -> (model.metrics.csv, model.curve.png)."""
    return out.with_suffix(".metrics.csv"), out.with_suffix(".curve.png")


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def write_curve_png(path: Path, rows: list[dict], title: str, sac_start: int | None = None) -> None:
    """Eval success, eval return, and losses / weights (log scale) against updates; a dotted line where SAC
    and online collection start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [r["eval/success_rate"] for r in rows], marker="o")
    axes[0].set(title="eval success rate", xlabel="update", ylim=(-0.05, 1.05))
    axes[1].plot(steps, [r["eval/return"] for r in rows], marker="o", color="tab:green")
    axes[1].set(title="eval return", xlabel="update")
    for key in ("losses/critic", "losses/bc", "charts/bc_weight", "charts/alpha"):
        values = [r[key] for r in rows]
        if not all(np.isnan(values)):
            axes[2].plot(steps, values, label=key)
    axes[2].set(title="losses and weights", xlabel="update", yscale="log")
    axes[2].legend(fontsize=7)
    if sac_start is not None:
        for ax in axes:
            ax.axvline(sac_start, color="gray", linestyle=":", linewidth=1)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


def train(config: TrainConfig, progress: bool = True, log=None) -> TrainResult:
    """Run the whole training; ``log(line)`` (optional) receives a one-line summary when the updates start."""
    config.validate()
    threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, progress, log)
    finally:
        torch.set_num_threads(threads)


def _train(config: TrainConfig, progress: bool, log) -> TrainResult:
    start_s = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    out = Path(config.out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: directory {out.parent} does not exist")
    policy_config = config.policy_config()
    goals = tasks.make_goals(config.n_goals, seed=config.seed, robot=config.robot)
    train_task = config.make_task(config.n_envs, goals, config.seed + 1)
    eval_task = config.make_task(len(goals), goals, config.seed + 2)
    action_norm = Normalizer(policy_config.action_stats, policy_config.action_dim)
    if config.demos:
        demo_episodes = load_npz_demos(config.demos, policy_config.state_dim, policy_config.action_dim,
                                       policy_config.action_stats, policy_config.observation_names,
                                       chunk_size=config.chunk_size, cameras=policy_config.cameras,
                                       action_names=policy_config.joint_names)
        stats = policy_config.action_stats
        span = (np.array(stats.b) - np.array(stats.a) if stats is not None and stats.mode == "min_max"
                else np.full(policy_config.action_dim, 200.0))
        report_rest_offsets(config.demos, policy_config.observation_names, policy_config.joint_names, span,
                            log or print)
    else:
        demo_episodes = expert_episodes(config.make_task(config.n_envs, goals, config.seed + 3),
                                        config.demo_episodes, action_norm, images=config.sees_images)
    if config.sees_images and config.image_encoder == "small_cnn":  # trained from scratch: the data's statistics
        policy_config = config.policy_config(image_statistics(demo_episodes, tasks.CAMERA_NAME))
    actor = build_actor(policy_config)
    offline = SequenceReplay(config.chunk_size, config.history)
    for episode in demo_episodes:
        offline.add_episode(episode)
    online = SequenceReplay(config.chunk_size, config.history)

    learner = SACLearner(
        actor, n_critics=config.n_critics, critic_hidden=config.critic_hidden, gamma=config.gamma, tau=config.tau,
        actor_lr=config.actor_lr, critic_lr=config.critic_lr, alpha_lr=config.alpha_lr,
        init_temperature=config.init_temperature, target_entropy=config.target_entropy,
        q_aggregate=config.q_aggregate, bc_loss=config.bc_loss, bc_relative_to_q=config.bc_relative_to_q,
        bc_only=config.bc_only, seed=config.seed,
        bc_schedule=BCSchedule(config.bc_schedule, config.bc_start, config.bc_end,
                               config.bc_decay_steps or config.steps))
    runner = ChunkRunner(actor, deterministic=False, generator=torch.Generator().manual_seed(config.seed + 4))
    collect = Collector(train_task, runner, actor.action_norm, config.sees_images)

    def evaluation_row(step: int) -> dict:  # the losses averaged since the last row, then the evaluation
        return {"step": step, "env_steps": collect.env_steps, "wall_s": round(time.perf_counter() - start_s, 2),
                **{k: v / n_sum for k, v in sums.items()}, **evaluate(actor, eval_task, config.seed + 5)}

    rows: list[dict] = []
    sums: dict[str, float] = {}
    n_sum = done = 0  # updates summed in ``sums``; whole updates done
    best = {"score": (-1.0, -np.inf), "state": None, "step": 0, "metrics": {}}  # set by every better evaluation
    interrupted = False
    critic_params = None if config.bc_only else sum(p.numel() for p in learner.qf.parameters())
    if log:
        seen = "".join(f", camera {c.name} {c.height}x{c.width} through {policy_config.image_encoder}"
                       for c in policy_config.cameras)
        critic = "" if critic_params is None else f", critic {critic_params:,}"
        log(f"{config.task}: {run_kind(config, config.steps)}, {type(actor).__name__} {actor.num_parameters():,} "
            f"parameters{seen}{critic}; {len(demo_episodes)} demonstration episodes ({len(offline)} transitions); "
            f"{config.steps} updates")
    bar = _progress(config.steps, progress)
    try:
        for step in range(1, config.steps + 1):
            if not config.bc_only and step > config.online_start:
                for episode in collect.step():
                    online.add_episode(episode)
            batch = sample_batch(offline, online, config.batch_size, rng)
            for key, value in learner.update(batch, step - 1, actor_sac=step > config.online_start).items():
                sums[key] = sums.get(key, 0.0) + value
            n_sum, done = n_sum + 1, step
            if step % config.eval_every == 0 or step == config.steps:
                row = evaluation_row(step)
                rows.append(row)
                sums, n_sum = {}, 0
                score = (row["eval/success_rate"], row["eval/return"])
                if score >= best["score"] or not config.save_best:
                    best = {"score": score, "state": copy.deepcopy(actor.state_dict()), "step": step,
                            "metrics": {k: row[k] for k in EVAL_KEYS}}
                bar.set_postfix({"bc": f"{row['losses/bc']:.4f}", "q": f"{row['charts/q']:.1f}",
                                 "success": f"{row['eval/success_rate']:.2f}"}, refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if interrupted and not rows:  # stopped before any evaluation: the actor of the last whole update, scored
        if done == 0:
            raise KeyboardInterrupt  # nothing trained, nothing written (an earlier run's files stay whole)
        if log:
            log(f"interrupted before the first evaluation: evaluating the actor of update {done} once, to save it "
                f"with its score")
        rows.append(evaluation_row(done))
        best = {"step": done, "metrics": {k: rows[-1][k] for k in EVAL_KEYS}}
    elif config.save_best or interrupted:
        actor.load_state_dict(best["state"])
    actor.eval()
    wall_s = time.perf_counter() - start_s
    extra = {"task": eval_task.info(), "calibration": config.robot.calibration,
             "train": {"config": asdict(config), "steps_done": done, "interrupted": interrupted,
                       "wall_s": round(wall_s, 1), "saved_step": best["step"], "eval": best["metrics"],
                       "env_steps": collect.env_steps, "demo_transitions": len(offline),
                       "episode_s": eval_task.max_steps * eval_task.period_s}}
    if not all(torch.isfinite(p).all() for p in actor.parameters()):
        raise TrainingError(f"training diverged: the actor saved at update {best['step']} has non-finite weights "
                            f"(lower the learning rates or BC weight, or check the demonstrations); {out} not written")
    with interrupts_ignored():  # a second Ctrl-C must not leave a new checkpoint beside the last run's curve
        path = save_checkpoint(out, actor, extra=extra)
        csv_path, png_path = side_paths(out)
        write_metrics_csv(csv_path, rows)
        sees = (f" + {config.image_encoder} camera" if config.sees_images
                else " (state only)" if config.task == tasks.VISUAL_TASK_NAME else "")
        write_curve_png(png_path, rows, f"{config.task}: {type(actor).__name__}{sees}, {run_kind(config, done)}, "
                                        f"seed {config.seed}",
                        sac_start=config.online_start if sac_ran(config, done) else None)
    return TrainResult(actor, path, rows, wall_s, interrupted, best, critic_params)


class TrainingError(RuntimeError):
    """Training produced nothing worth saving; the message says why and names the file not written."""


@contextlib.contextmanager
def interrupts_ignored():
    """SIGINT / SIGTERM are ignored in the block: the run is ending anyway, and its files must be written whole
    (main thread only; elsewhere signal handlers cannot be changed and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="upd", dynamic_ncols=True, mininterval=0.5)
