"""Actor-critic (A2C) on CartPole: a PyTorch reinforcement-learning script, only the import changed.

The policy and the value function are small MLPs (nn.Module); each environment step samples an
action from a Categorical over the policy's logits and reads it with .item() (one realize per
step, replayed from the plan cache). Every `--rollout` steps the collected transitions make one
batch: generalized advantage estimates computed from the critic's values, then one Adam step
on the policy-gradient loss, the value loss and an entropy bonus. Every batch has the same
shape, so every update replays one compiled plan too.

CartPole-v1 is solved when the average return over 100 consecutive episodes reaches 195.

Run: python examples/policy_gradient.py            (the full run, until solved)
     python examples/policy_gradient.py --quick    (CI: a short run that asserts learning)
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import gymnasium as gym
import matplotlib
import numpy as np
from tqdm import tqdm

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
import lazytorch.optim as optim
from lazytorch.distributions import Categorical

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SOLVED = 195.0          # CartPole's classic criterion: this average over 100 episodes
QUICK_STEPS = 5000      # the --quick run's length, in environment steps
QUICK_THRESHOLD = 50.0  # --quick asserts its last 20 episodes average above this (random: ~22)


class ActorCritic(nn.Module):
    """A policy head (action logits) and a value head, each a two-layer tanh MLP."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                   nn.Linear(hidden, hidden), nn.Tanh(),
                                   nn.Linear(hidden, n_actions))
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                    nn.Linear(hidden, hidden), nn.Tanh(),
                                    nn.Linear(hidden, 1))

    def forward(self, obs):
        return Categorical(logits=self.actor(obs)), self.critic(obs).squeeze(-1)


def advantages(rewards, values, next_values, terminated, done, gamma, lam):
    """Generalized advantage estimates (GAE) and the value targets, over one rollout."""
    adv = np.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        last = delta + gamma * lam * (1.0 - done[t]) * last
        adv[t] = last
    return adv, adv + values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"CI form: {QUICK_STEPS} environment steps, assert the last 20 "
                        f"episodes average above {QUICK_THRESHOLD:g}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/policy_gradient")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-episodes", type=int, default=2000)
    p.add_argument("--rollout", type=int, default=32, help="environment steps per update")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.98)
    p.add_argument("--lam", type=float, default=0.95, help="GAE lambda")
    p.add_argument("--entropy", type=float, default=0.01, help="entropy bonus coefficient")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.zeros(1, device=device)            # fails here, clearly, where the device is absent
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    env = gym.make("CartPole-v1")
    env.action_space.seed(args.seed)
    obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n

    model = ActorCritic(obs_dim, n_actions).to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    T = args.rollout
    buf_obs = np.zeros((T, obs_dim), np.float32)
    buf_next = np.zeros((T, obs_dim), np.float32)
    buf_act = np.zeros(T, np.int64)
    buf_rew, buf_term, buf_done = (np.zeros(T, np.float32) for _ in range(3))

    max_episodes = args.max_episodes
    max_steps = QUICK_STEPS if args.quick else math.inf
    returns: list[float] = []
    ends: list[int] = []          # the step count at each episode's end
    averages: list[float] = []
    act_times: list[float] = []
    update_times: list[float] = []
    solved_at = None
    ep_return, steps = 0.0, 0
    obs, _ = env.reset(seed=args.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    bar = tqdm(total=QUICK_STEPS if args.quick else max_episodes,
               unit="step" if args.quick else "ep", mininterval=0.5)
    while len(returns) < max_episodes and solved_at is None and steps < max_steps:
        for t in range(T):
            t0 = time.perf_counter()
            with torch.no_grad():
                logits = model.actor(torch.as_tensor(obs, device=device))
                action = Categorical(logits=logits).sample().item()
            act_times.append(time.perf_counter() - t0)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buf_obs[t], buf_next[t], buf_act[t] = obs, next_obs, action
            buf_rew[t], buf_term[t], buf_done[t] = reward, terminated, terminated or truncated
            ep_return += reward
            steps += 1
            obs = next_obs
            if terminated or truncated:
                returns.append(ep_return)
                ends.append(steps)
                averages.append(float(np.mean(returns[-100:])))
                elapsed = time.perf_counter() - start
                bar.update(steps - bar.n if args.quick else 1)
                bar.set_postfix(ret=f"{ep_return:.0f}", avg100=f"{averages[-1]:.1f}",
                                steps_per_s=f"{steps / elapsed:.0f}")
                if len(returns) >= 100 and averages[-1] >= SOLVED and solved_at is None:
                    solved_at = len(returns)
                ep_return = 0.0
                obs, _ = env.reset()

        t0 = time.perf_counter()
        obs_b = torch.as_tensor(buf_obs, device=device)
        next_b = torch.as_tensor(buf_next, device=device)
        with torch.no_grad():
            v = model.critic(torch.cat([obs_b, next_b])).squeeze(-1).numpy()
        adv, target = advantages(buf_rew, v[:T], v[T:], buf_term, buf_done, args.gamma, args.lam)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

        dist, values = model(obs_b)
        log_prob = dist.log_prob(torch.as_tensor(buf_act, device=device))
        policy_loss = -(log_prob * torch.as_tensor(adv, device=device)).mean()
        value_loss = F.mse_loss(values, torch.as_tensor(target, device=device))
        loss = policy_loss + 0.5 * value_loss - args.entropy * dist.entropy().mean()
        optimizer.zero_grad()
        loss.backward()
        for net in (model.actor, model.critic):   # each its own: the value loss is larger
            nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        optimizer.step()
        update_times.append(time.perf_counter() - t0)
    bar.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    ckpt = os.path.join(args.out, "policy_gradient.pt")
    torch.save(model.state_dict(), ckpt)
    csv = os.path.join(args.out, "returns.csv")
    np.savetxt(csv, np.column_stack([np.arange(1, len(returns) + 1), ends, returns, averages]),
               fmt=["%d", "%d", "%g", "%.2f"], delimiter=",",
               header="episode,steps,return,average_100", comments="")
    png = os.path.join(args.out, "returns.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, len(returns) + 1), returns, lw=0.8, alpha=0.5, label="episode return")
    ax.plot(np.arange(1, len(averages) + 1), averages, lw=2, label="average of last 100")
    ax.axhline(SOLVED, color="k", ls="--", lw=1, label=f"solved ({SOLVED:g})")
    ax.set_xlabel("episode")
    ax.set_ylabel("return")
    ax.set_title(f"A2C on CartPole-v1 (lazytorch, seed {args.seed})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)

    stats = torch.debug.stats()
    print(f"episodes: {len(returns)}, env steps: {steps}, wall: {wall:.1f} s "
          f"({wall / len(returns) * 1e3:.0f} ms per episode), CPU: {cpu:.1f} s")
    print(f"time per env step (act: forward, sample, .item()): "
          f"{statistics.median(act_times) * 1e3:.3f} ms median")
    print(f"time per update ({T} steps: critic values, loss, backward, Adam): "
          f"{statistics.median(update_times) * 1e3:.2f} ms median, {len(update_times)} updates")
    print(f"kernels compiled: {stats['kernels_compiled']}, "
          f"plan-cache hits: {stats['plan_cache_hits']}, realizes: {stats['realizes']}")
    print(f"checkpoint: {ckpt}")
    print(f"plot: {png} (returns: {csv})")
    last20 = float(np.mean(returns[-20:]))
    if solved_at is not None:
        print(f"solved: average return {averages[-1]:.1f} over episodes {solved_at - 99}-"
              f"{solved_at}, after {solved_at} episodes")
    print(f"average return of the last 20 episodes: {last20:.1f}")
    if args.quick and not last20 > QUICK_THRESHOLD:
        print(f"FAILED: the last 20 episodes average {last20:.1f}, not above "
              f"{QUICK_THRESHOLD:g}", file=sys.stderr)
        return 1
    if not args.quick and solved_at is None:
        print(f"FAILED: not solved in {len(returns)} episodes (best average over 100: "
              f"{max(averages[99:], default=0.0):.1f})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
