//! Keep exactly `k` players so that a decoded surrogate is as large as it can be: the ProxySPEX
//! paper's pruning selection, `max f̂(S) subject to |S| = k`, solved exactly by branch and bound.
//!
//! # The problem as the search sees it
//!
//! The spectrum is taken to the Moebius basis, `f̂(S) = sum_{T ⊆ S} a(T)`. A player that no
//! non-zero coefficient mentions ("untouched") changes nothing but the count, so the untouched
//! players are interchangeable *fillers*: the search branches only over the touched players and
//! keeps a count, and the selection completes the chosen touched players with the
//! smallest-indexed untouched ones. With `p` touched and `F = n - p` untouched players, the
//! touched part `X` of a selection may hold any `|X|` in `[max(0, k - F), min(k, p)]`.
//!
//! # The bound
//!
//! A node fixes some touched players in (`I`), some out (`O`) and leaves the rest undecided
//! (`U`); `r` more touched players are to be chosen, `r_min <= r <= r_max`. A term with a player
//! in `O` is dead; a term inside `I` is paid whatever happens (the node's *base*); every other
//! live term is charged to its undecided players, which gives each undecided `u` a contribution
//! `c(u)` that bounds what `u` can bring if chosen:
//!
//! - a term with one undecided player `u`: its coefficient, exactly, to `c(u)` (negative ones
//!   included: choosing `u` pays them);
//! - a term with two undecided players `{u, v}` ("pair"): split into a share for each side
//!   (shares of several terms with the same undecided pair summed), and each side counts only
//!   what `r` allows: `u` chosen with `r - 1` others gains at most its largest `r_max - 1`
//!   positive shares, and pays at least the smallest negative shares it cannot avoid when fewer
//!   than `r_min - 1` non-negative partners remain (a Gilmore–Lawler-style bound). How a pair is
//!   split is free, and tuned (a Lagrangian relaxation): a positive `a` of an original pair term
//!   goes `λ a` to one side and `(1 - λ) a` to the other; a negative one is first linearised in
//!   part, `a x_u x_v <= θ a (x_u + x_v - 1) + (1 - θ) a x_u x_v` (`θ a` to each side, `-θ a`
//!   to the base), the rest halved. Every `λ, θ` in `[0, 1]` gives a valid bound; projected
//!   subgradient steps choose them at the root (200 steps) and refine them at shallow nodes
//!   (20 steps while at most 10 players are decided). Pairs left by longer terms are halved;
//! - a term with three or more undecided players: a positive coefficient is split evenly among
//!   them (dropped when it has more undecided players than `r_max`, since it cannot be completed);
//!   a negative one is dropped (it can only lower the value).
//!
//! Any set `A` of `r` chosen players then satisfies `f̂(I ∪ A) <= base + sum_{u in A} c(u)`, so
//! the node's bound is `base` plus the `r_min` largest contributions plus any further positive
//! ones up to `r_max`. The players that bound picks also give a candidate selection, evaluated
//! exactly at every node to improve the incumbent.
//!
//! # The search
//!
//! The incumbent starts from the better of a forward greedy (add the best player) and a backward
//! greedy (drop the least useful one), improved by single swaps until none helps. The search is
//! depth first: branch on the undecided player with the largest contribution (smallest index on
//! ties), "keep" first; prune a node whose bound does not beat the incumbent by more than a
//! rounding tolerance (`1e-12 * (|a(∅)| + sum |a(T)|)`). Everything is deterministic: the same
//! spectrum, `k` and node limit give the same selection, bound and node count. A time limit
//! ([`SearchLimit::max_time`]) stops wherever the clock says, so it can change the result from
//! one run (or machine) to the next; a node limit never does. When a limit stops the search, the
//! bound reported is the largest bound of the unexplored nodes (each retuned once, beyond the
//! node count).

// Players and terms are indices into several parallel arrays: index loops read best.
#![allow(clippy::needless_range_loop)]

use std::time::{Duration, Instant};

use crate::{Basis, Error, Result, Spectrum};

/// When to stop a search that has not proven optimality yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchLimit {
    /// Most nodes (bound evaluations) to visit; `None` for no limit. Deterministic.
    pub max_nodes: Option<u64>,
    /// Most wall time to spend; `None` for no limit. Not deterministic: where the clock stops
    /// the search depends on the machine and its load, and so may the selection returned.
    pub max_time: Option<Duration>,
}

impl SearchLimit {
    /// The default node limit: 4 to 10 s on one core over 96 players and 500 terms (release
    /// build); 27 players and 400 terms prove optimality in under 50,000 nodes.
    pub const DEFAULT_NODES: u64 = 1_000_000;

    /// Stop after `nodes` nodes (deterministic).
    pub fn nodes(nodes: u64) -> Self {
        SearchLimit {
            max_nodes: Some(nodes),
            max_time: None,
        }
    }

    /// Stop after `time` of wall time (not deterministic: see [`SearchLimit::max_time`]).
    pub fn time(time: Duration) -> Self {
        SearchLimit {
            max_nodes: None,
            max_time: Some(time),
        }
    }

    /// Search until optimality is proven, however long that takes.
    pub fn unlimited() -> Self {
        SearchLimit {
            max_nodes: None,
            max_time: None,
        }
    }
}

impl Default for SearchLimit {
    /// [`SearchLimit::DEFAULT_NODES`] nodes, no time limit: deterministic.
    fn default() -> Self {
        Self::nodes(Self::DEFAULT_NODES)
    }
}

/// The players to keep, and how sure the search is that nobody can do better.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Kept players, sorted ascending, exactly `k` of them.
    pub kept: Vec<u32>,
    /// `f̂(kept)`.
    pub value: f64,
    /// The best upper bound on `max_{|S| = k} f̂(S)` proven; equal to `value` when optimal.
    pub bound: f64,
    /// Whether `value` is proven optimal (up to rounding: see the module doc).
    pub optimal: bool,
    /// Nodes visited (bound evaluations; 0 for the greedy heuristic alone).
    pub nodes: u64,
}

impl Selection {
    /// `bound - value`: how much better an optimal selection could be (0 when optimal).
    pub fn gap(&self) -> f64 {
        self.bound - self.value
    }
}

/// The selection of exactly `k` players that maximises `spectrum`, by branch and bound (see the
/// module doc), stopped by `limit`.
///
/// When the limit stops the search, the best selection found is returned with `optimal = false`
/// and the best bound proven (`bound >= value`). Errors when `k` exceeds the number of players or
/// a coefficient is not finite.
pub fn maximise_keep_exactly(
    spectrum: &Spectrum,
    k: usize,
    limit: SearchLimit,
) -> Result<Selection> {
    let problem = Problem::new(spectrum, k)?;
    Ok(problem.search(limit))
}

/// The heuristic alone: the better of forward and backward greedy, improved by single swaps.
///
/// `bound` is the root bound of [`maximise_keep_exactly`], and `optimal` is true only when the
/// heuristic's value reaches it (then `bound = value`). Errors as [`maximise_keep_exactly`].
pub fn greedy_keep_exactly(spectrum: &Spectrum, k: usize) -> Result<Selection> {
    let problem = Problem::new(spectrum, k)?;
    let x = problem.heuristic();
    let value = problem.eval(&x);
    let mut scratch = Scratch::new(problem.p);
    let root = vec![UNDECIDED; problem.p];
    let mut mult = problem.initial_multipliers();
    let bound = match problem.bound(&root, &mult, &mut scratch) {
        NodeBound::Infeasible => value,
        NodeBound::Leaf(v) => v,
        NodeBound::Open { .. } => {
            problem.tune(&root, value, TUNE_ITERATIONS, &mut mult, &mut scratch)
        }
    };
    let optimal = bound <= value + problem.tol;
    Ok(Selection {
        kept: problem.kept(&x),
        value,
        bound: if optimal { value } else { bound },
        optimal,
        nodes: 0,
    })
}

/// Most subgradient steps on the pair multipliers at the root.
const TUNE_ITERATIONS: usize = 200;

/// Nodes with at most this many players decided retune the multipliers ...
const TUNE_DEPTH: usize = 10;

/// ... with this many steps.
const NODE_TUNE_ITERATIONS: usize = 20;

const UNDECIDED: u8 = 0;
const IN: u8 = 1;
const OUT: u8 = 2;

/// The reduced problem: touched players (local indices `0..p`, in ascending global order), the
/// terms over them, the untouched fillers and the range of touched players to keep.
struct Problem {
    /// Number of touched players.
    p: usize,
    /// Global index of each touched player, ascending.
    players: Vec<u32>,
    /// Untouched players, ascending.
    fillers: Vec<u32>,
    /// `k`.
    k: usize,
    /// Fewest touched players a selection may hold: `max(0, k - fillers)`.
    lo: usize,
    /// Most touched players a selection may hold: `min(k, p)`.
    hi: usize,
    /// `a(∅)`.
    constant: f64,
    /// Term `t` has members `members[start[t]..start[t + 1]]` (local indices) and `coef[t]`.
    start: Vec<usize>,
    members: Vec<u32>,
    coef: Vec<f64>,
    /// Terms containing each touched player.
    by_player: Vec<Vec<u32>>,
    /// Rounding tolerance on values.
    tol: f64,
}

/// What a node's bound computation found.
enum NodeBound {
    /// No completion respects the count.
    Infeasible,
    /// Only one completion exists; its value (the incumbent is updated by the caller).
    Leaf(f64),
    /// The bound, the player to branch on, and the bound's candidate completion's value.
    Open { bound: f64, branch: usize },
}

/// Reused buffers of the bound computation.
struct Scratch {
    c: Vec<f64>,
    /// Dense `p x p` pair sums, valid where `stamp == epoch`.
    q: Vec<f64>,
    stamp: Vec<u32>,
    epoch: u32,
    partners: Vec<Vec<u32>>,
    undecided: Vec<u32>,
    halves: Vec<f64>,
    /// The bound's candidate completion (state with the chosen undecided players in).
    candidate: Vec<bool>,
}

impl Scratch {
    fn new(p: usize) -> Self {
        Scratch {
            c: vec![0.0; p],
            q: vec![0.0; p * p],
            stamp: vec![0; p * p],
            epoch: 0,
            partners: vec![Vec::new(); p],
            undecided: Vec::with_capacity(p),
            halves: Vec::with_capacity(p),
            candidate: vec![false; p],
        }
    }
}

impl Problem {
    fn new(spectrum: &Spectrum, k: usize) -> Result<Self> {
        let n = spectrum.n_players();
        if k > n {
            return Err(Error::invalid(
                "k",
                format!("cannot keep {k} players out of {n}"),
            ));
        }
        let moebius = spectrum.in_basis(Basis::Moebius);
        if let Some((s, v)) = moebius.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid(
                "spectrum",
                format!("coefficient of {s} is {v}: coefficients must be finite"),
            ));
        }
        let mut touched = vec![false; n];
        let mut constant = 0.0;
        let mut scale = 0.0;
        for (s, v) in moebius.iter() {
            scale += v.abs();
            if s.is_empty() {
                constant += v;
            } else if v != 0.0 {
                for &i in s.indices() {
                    touched[i as usize] = true;
                }
            }
        }
        let mut local = vec![u32::MAX; n];
        let mut players = Vec::new();
        let mut fillers = Vec::new();
        for (i, &t) in touched.iter().enumerate() {
            if t {
                local[i] = players.len() as u32;
                players.push(i as u32);
            } else {
                fillers.push(i as u32);
            }
        }
        let p = players.len();
        let mut start = vec![0];
        let mut members = Vec::new();
        let mut coef = Vec::new();
        let mut by_player = vec![Vec::new(); p];
        for (s, v) in moebius.iter() {
            if s.is_empty() || v == 0.0 {
                continue;
            }
            let t = coef.len() as u32;
            for &i in s.indices() {
                let j = local[i as usize];
                members.push(j);
                by_player[j as usize].push(t);
            }
            start.push(members.len());
            coef.push(v);
        }
        Ok(Problem {
            p,
            players,
            lo: k.saturating_sub(fillers.len()),
            hi: k.min(p),
            fillers,
            k,
            constant,
            start,
            members,
            coef,
            by_player,
            tol: 1e-12 * scale + f64::MIN_POSITIVE,
        })
    }

    fn term(&self, t: usize) -> &[u32] {
        &self.members[self.start[t]..self.start[t + 1]]
    }

    /// `f̂` of the touched selection `x` (fillers change nothing).
    fn eval(&self, x: &[bool]) -> f64 {
        let mut v = self.constant;
        for t in 0..self.coef.len() {
            if self.term(t).iter().all(|&j| x[j as usize]) {
                v += self.coef[t];
            }
        }
        v
    }

    /// `f̂(x ∪ {u}) - f̂(x)` for `u` not in `x`.
    fn gain_add(&self, x: &[bool], u: usize) -> f64 {
        self.by_player[u]
            .iter()
            .map(|&t| t as usize)
            .filter(|&t| {
                self.term(t)
                    .iter()
                    .all(|&j| j as usize == u || x[j as usize])
            })
            .map(|t| self.coef[t])
            .sum()
    }

    /// `f̂(x \ {v}) - f̂(x)` for `v` in `x`.
    fn gain_remove(&self, x: &[bool], v: usize) -> f64 {
        -self.by_player[v]
            .iter()
            .map(|&t| t as usize)
            .filter(|&t| self.term(t).iter().all(|&j| x[j as usize]))
            .map(|t| self.coef[t])
            .sum::<f64>()
    }

    /// The full selection: the touched players of `x` and the smallest fillers, sorted.
    fn kept(&self, x: &[bool]) -> Vec<u32> {
        let touched = x.iter().filter(|&&b| b).count();
        let mut kept: Vec<u32> = (0..self.p)
            .filter(|&j| x[j])
            .map(|j| self.players[j])
            .chain(self.fillers.iter().copied().take(self.k - touched))
            .collect();
        kept.sort_unstable();
        kept
    }

    /// Forward greedy: add the best player while the count needs it or it helps.
    fn forward_greedy(&self) -> Vec<bool> {
        let mut x = vec![false; self.p];
        for size in 0..self.hi {
            let best = (0..self.p)
                .filter(|&u| !x[u])
                .map(|u| (u, self.gain_add(&x, u)))
                .fold(None, |best: Option<(usize, f64)>, (u, g)| match best {
                    Some((_, bg)) if bg >= g => best,
                    _ => Some((u, g)),
                });
            match best {
                Some((u, g)) if size < self.lo || g > self.tol => x[u] = true,
                _ => break,
            }
        }
        x
    }

    /// Backward greedy: from every touched player, drop the least useful while the count needs it
    /// or dropping helps.
    fn backward_greedy(&self) -> Vec<bool> {
        let mut x = vec![true; self.p];
        for size in (self.lo + 1..=self.p).rev() {
            let best = (0..self.p)
                .filter(|&v| x[v])
                .map(|v| (v, self.gain_remove(&x, v)))
                .fold(None, |best: Option<(usize, f64)>, (v, g)| match best {
                    Some((_, bg)) if bg >= g => best,
                    _ => Some((v, g)),
                });
            match best {
                Some((v, g)) if size > self.hi || g > self.tol => x[v] = false,
                _ => break,
            }
        }
        x
    }

    /// Best-improvement local search over single moves: swap a kept and a dropped touched player,
    /// or trade a touched player for a filler (either way) where the count allows.
    fn improve(&self, x: &mut [bool]) {
        let mut size = x.iter().filter(|&&b| b).count();
        for _ in 0..4 * self.p + 4 {
            // (gain, removed, added): None for a filler.
            let mut best: (f64, Option<usize>, Option<usize>) = (self.tol, None, None);
            let mut consider = |g: f64, out: Option<usize>, add: Option<usize>| {
                if g > best.0 {
                    best = (g, out, add);
                }
            };
            for u in (0..self.p).filter(|&u| !x[u]) {
                if size < self.hi {
                    consider(self.gain_add(x, u), None, Some(u));
                }
            }
            for v in 0..self.p {
                if !x[v] {
                    continue;
                }
                let gr = self.gain_remove(x, v);
                if size > self.lo {
                    consider(gr, Some(v), None);
                }
                x[v] = false;
                for u in (0..self.p).filter(|&u| !x[u] && u != v) {
                    consider(gr + self.gain_add(x, u), Some(v), Some(u));
                }
                x[v] = true;
            }
            match best {
                (_, None, None) => break,
                (_, out, add) => {
                    if let Some(v) = out {
                        x[v] = false;
                        size -= 1;
                    }
                    if let Some(u) = add {
                        x[u] = true;
                        size += 1;
                    }
                }
            }
        }
    }

    /// The incumbent heuristic: better of the two greedies, then local search.
    fn heuristic(&self) -> Vec<bool> {
        let forward = self.forward_greedy();
        let backward = self.backward_greedy();
        let mut x = if self.eval(&backward) > self.eval(&forward) + self.tol {
            backward
        } else {
            forward
        };
        self.improve(&mut x);
        x
    }

    /// The bound of the node `state` (one of `UNDECIDED`, `IN`, `OUT` per touched player); leaves
    /// the bound's candidate completion in `s.candidate` for `Open` and `Leaf` nodes.
    fn bound(&self, state: &[u8], mult: &[f64], s: &mut Scratch) -> NodeBound {
        let n_in = state.iter().filter(|&&b| b == IN).count();
        s.undecided.clear();
        s.undecided
            .extend((0..self.p as u32).filter(|&u| state[u as usize] == UNDECIDED));
        let n_u = s.undecided.len();
        if n_in > self.hi || n_in + n_u < self.lo {
            return NodeBound::Infeasible;
        }
        let r_min = self.lo.saturating_sub(n_in);
        let r_max = (self.hi - n_in).min(n_u);
        if r_max == 0 || r_min == n_u {
            // One completion: nothing more (r_max = 0) or every undecided player (r_min = n_u).
            let take_all = r_max > 0;
            for j in 0..self.p {
                s.candidate[j] = state[j] == IN || (take_all && state[j] == UNDECIDED);
            }
            return NodeBound::Leaf(self.eval(&s.candidate));
        }

        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            s.stamp.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        for &u in &s.undecided {
            s.c[u as usize] = 0.0;
            s.partners[u as usize].clear();
        }
        let mut base = self.constant;
        let mut und = [0u32; 2];
        'terms: for t in 0..self.coef.len() {
            let a = self.coef[t];
            let mut d = 0usize;
            for &j in self.term(t) {
                match state[j as usize] {
                    OUT => continue 'terms,
                    UNDECIDED => {
                        if d < 2 {
                            und[d] = j;
                        }
                        d += 1;
                    }
                    _ => {}
                }
            }
            match d {
                0 => base += a,
                1 => s.c[und[0] as usize] += a,
                2 => {
                    let (u, v) = (und[0] as usize, und[1] as usize);
                    let original_pair = self.start[t + 1] - self.start[t] == 2;
                    let (to_u, to_v) = if !original_pair {
                        (0.5 * a, 0.5 * a)
                    } else if a > 0.0 {
                        (mult[t] * a, (1.0 - mult[t]) * a)
                    } else {
                        // a x_u x_v <= theta a (x_u + x_v - 1) + (1 - theta) a x_u x_v.
                        let lin = mult[t] * a;
                        base -= lin;
                        s.c[u] += lin;
                        s.c[v] += lin;
                        (0.5 * (a - lin), 0.5 * (a - lin))
                    };
                    for (x, y, share) in [(u, v, to_u), (v, u, to_v)] {
                        let cell = x * self.p + y;
                        if s.stamp[cell] != s.epoch {
                            s.stamp[cell] = s.epoch;
                            s.q[cell] = 0.0;
                            s.partners[x].push(y as u32);
                        }
                        s.q[cell] += share;
                    }
                }
                _ => {
                    if a > 0.0 && d <= r_max {
                        let share = a / d as f64;
                        for &j in self.term(t) {
                            if state[j as usize] == UNDECIDED {
                                s.c[j as usize] += share;
                            }
                        }
                    }
                }
            }
        }
        // Pairs: u chosen with r - 1 others of the n_u - 1 undecided, r_min <= r <= r_max.
        for &u in &s.undecided {
            let u = u as usize;
            if s.partners[u].is_empty() {
                continue;
            }
            s.halves.clear();
            s.halves
                .extend(s.partners[u].iter().map(|&v| s.q[u * self.p + v as usize]));
            s.halves.sort_unstable_by(|a, b| b.total_cmp(a));
            let n_pos = s.halves.iter().take_while(|&&h| h > 0.0).count();
            let n_neg = s.halves.iter().rev().take_while(|&&h| h < 0.0).count();
            let gain: f64 = s.halves[..n_pos.min(r_max - 1)].iter().sum();
            // Partners that are not negative: n_u - 1 - n_neg (zeros included).
            let forced = (r_min.saturating_sub(1)).saturating_sub(n_u - 1 - n_neg);
            let len = s.halves.len();
            let loss: f64 = s.halves[len - n_neg..len - n_neg + forced].iter().sum();
            s.c[u] += gain + loss;
        }
        // Largest contributions first, smallest index on ties.
        let c = &s.c;
        s.undecided
            .sort_by(|&a, &b| c[b as usize].total_cmp(&c[a as usize]).then(a.cmp(&b)));
        let mut bound = base;
        let mut taken = 0;
        for &u in &s.undecided {
            let cu = s.c[u as usize];
            if taken < r_min || (taken < r_max && cu > 0.0) {
                bound += cu;
                taken += 1;
            } else {
                break;
            }
        }
        for j in 0..self.p {
            s.candidate[j] = state[j] == IN;
        }
        for &u in &s.undecided[..taken] {
            s.candidate[u as usize] = true;
        }
        NodeBound::Open {
            bound,
            branch: s.undecided[0] as usize,
        }
    }

    /// The starting multipliers: positive pairs split evenly, negative pairs not linearised.
    fn initial_multipliers(&self) -> Vec<f64> {
        self.coef
            .iter()
            .map(|&a| if a > 0.0 { 0.5 } else { 0.0 })
            .collect()
    }

    /// Lowers the bound of node `state` by projected subgradient steps on the pair multipliers
    /// (`mult`, left at the best found); `target` is the incumbent value. Returns the bound.
    fn tune(
        &self,
        state: &[u8],
        target: f64,
        iterations: usize,
        mult: &mut [f64],
        s: &mut Scratch,
    ) -> f64 {
        let mut best_bound = f64::INFINITY;
        let mut best_mult = mult.to_vec();
        let mut step_scale = 1.0;
        let mut stale = 0;
        let mut grad = vec![0.0; self.coef.len()];
        for _ in 0..iterations {
            let bound = match self.bound(state, mult, s) {
                NodeBound::Open { bound, .. } => bound,
                _ => return f64::NEG_INFINITY,
            };
            if bound < best_bound - self.tol {
                best_bound = bound;
                best_mult.copy_from_slice(mult);
                stale = 0;
            } else {
                stale += 1;
                if stale >= 5 {
                    step_scale /= 2.0;
                    stale = 0;
                }
            }
            if best_bound <= target + self.tol || step_scale < 1e-4 {
                break;
            }
            // d bound / d multiplier, for original pairs with both players undecided.
            let mut norm = 0.0;
            for t in 0..self.coef.len() {
                grad[t] = 0.0;
                let m = self.term(t);
                if m.len() != 2
                    || state[m[0] as usize] != UNDECIDED
                    || state[m[1] as usize] != UNDECIDED
                {
                    continue;
                }
                let (iu, iv) = (
                    s.candidate[m[0] as usize] as i32 as f64,
                    s.candidate[m[1] as usize] as i32 as f64,
                );
                let a = self.coef[t];
                grad[t] = if a > 0.0 {
                    a * (iu - iv)
                } else {
                    -a * (1.0 - iu - iv)
                };
                norm += grad[t] * grad[t];
            }
            if norm == 0.0 {
                break;
            }
            let step = step_scale * (bound - target).max(self.tol) / norm;
            for t in 0..self.coef.len() {
                if grad[t] != 0.0 {
                    mult[t] = (mult[t] - step * grad[t]).clamp(0.0, 1.0);
                }
            }
        }
        mult.copy_from_slice(&best_mult);
        best_bound
    }

    /// Depth-first branch and bound from the heuristic's incumbent.
    fn search(&self, limit: SearchLimit) -> Selection {
        let started = Instant::now();
        let mut best_x = self.heuristic();
        let mut best = self.eval(&best_x);
        let mut scratch = Scratch::new(self.p);
        let mut mult = self.initial_multipliers();
        self.tune(
            &vec![UNDECIDED; self.p],
            best,
            TUNE_ITERATIONS,
            &mut mult,
            &mut scratch,
        );
        // (node, a bound on its subtree: its parent's bound).
        let mut stack: Vec<(Vec<u8>, f64)> = vec![(vec![UNDECIDED; self.p], f64::INFINITY)];
        let mut nodes = 0u64;
        let mut stopped = false;
        while let Some((state, parent_bound)) = stack.pop() {
            let out_of_nodes = limit.max_nodes.is_some_and(|m| nodes >= m) && nodes > 0;
            let out_of_time = nodes.is_multiple_of(256)
                && nodes > 0
                && limit.max_time.is_some_and(|t| started.elapsed() >= t);
            if out_of_nodes || out_of_time {
                stack.push((state, parent_bound));
                stopped = true;
                break;
            }
            if parent_bound <= best + self.tol {
                continue;
            }
            nodes += 1;
            let decided = state.iter().filter(|&&b| b != UNDECIDED).count();
            if decided > 0 && decided <= TUNE_DEPTH {
                self.tune(&state, best, NODE_TUNE_ITERATIONS, &mut mult, &mut scratch);
            }
            match self.bound(&state, &mult, &mut scratch) {
                NodeBound::Infeasible => {}
                NodeBound::Leaf(v) => {
                    if v > best + self.tol {
                        best = v;
                        best_x.copy_from_slice(&scratch.candidate);
                    }
                }
                NodeBound::Open { bound, branch } => {
                    let v = self.eval(&scratch.candidate);
                    if v > best + self.tol {
                        best = v;
                        best_x.copy_from_slice(&scratch.candidate);
                    }
                    if bound > best + self.tol {
                        let mut out = state.clone();
                        out[branch] = OUT;
                        let mut keep = state;
                        keep[branch] = IN;
                        stack.push((out, bound));
                        stack.push((keep, bound));
                    }
                }
            }
        }
        // The unexplored nodes' own bounds (tighter than their parents'), not counted as nodes.
        let open = stack
            .iter()
            .filter(|&&(_, b)| b > best + self.tol)
            .map(|(state, b)| match self.bound(state, &mult, &mut scratch) {
                NodeBound::Infeasible => f64::NEG_INFINITY,
                NodeBound::Leaf(v) => v,
                NodeBound::Open { .. } => self
                    .tune(state, best, TUNE_ITERATIONS, &mut mult, &mut scratch)
                    .min(*b),
            })
            .filter(|&b| b > best + self.tol)
            .fold(f64::NEG_INFINITY, f64::max);
        let optimal = !stopped || open == f64::NEG_INFINITY;
        Selection {
            kept: self.kept(&best_x),
            value: best,
            bound: if optimal { best } else { open },
            optimal,
            nodes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaskBatch, Subset};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random terms of degree `0..=max_degree` over the players of `pool`, U[-1, 1].
    fn random_spectrum(
        n: usize,
        pool: &[u32],
        terms: usize,
        max_degree: usize,
        basis: Basis,
        rng: &mut ChaCha8Rng,
    ) -> Spectrum {
        let mut s = Spectrum::new(n, basis);
        for _ in 0..terms {
            let d = rng.random_range(0..=max_degree.min(pool.len()));
            let set = Subset::from_indices((0..d).map(|_| pool[rng.random_range(0..pool.len())]));
            s.add(set, rng.random_range(-1.0..1.0));
        }
        s
    }

    /// Every `k`-subset of `0..n` as a mask batch.
    fn all_k_subsets(n: usize, k: usize) -> MaskBatch {
        let mut masks = MaskBatch::new(n);
        for bits in 0u32..1 << n {
            if bits.count_ones() as usize == k {
                let kept: Vec<bool> = (0..n).map(|i| bits >> i & 1 == 1).collect();
                masks.push_bools(&kept);
            }
        }
        masks
    }

    fn value_of(s: &Spectrum, kept: &[u32]) -> f64 {
        let mut m = MaskBatch::new(s.n_players());
        m.push_subset(&Subset::from_indices(kept.iter().copied()));
        s.eval(&m)[0]
    }

    fn check(sel: &Selection, s: &Spectrum, k: usize) {
        assert_eq!(sel.kept.len(), k);
        assert!(sel.kept.windows(2).all(|w| w[0] < w[1]));
        assert!(sel.kept.iter().all(|&i| (i as usize) < s.n_players()));
        let v = value_of(s, &sel.kept);
        assert!((v - sel.value).abs() < 1e-9, "value {} vs {v}", sel.value);
        assert!(sel.bound >= sel.value - 1e-9);
    }

    #[test]
    fn equals_brute_force_on_random_small_spectra() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..500 {
            let n = rng.random_range(1..=14usize);
            // Sometimes only some players are touched.
            let pool: Vec<u32> = if case % 3 == 0 {
                (0..n as u32).filter(|_| rng.random_bool(0.5)).collect()
            } else {
                (0..n as u32).collect()
            };
            let pool = if pool.is_empty() { vec![0] } else { pool };
            let basis = if case % 2 == 0 {
                Basis::Moebius
            } else {
                Basis::Fourier
            };
            let terms = rng.random_range(0..=3 * n);
            let s = random_spectrum(n, &pool, terms, 3, basis, &mut rng);
            let k = rng.random_range(0..=n);
            let truth = s
                .eval(&all_k_subsets(n, k))
                .into_iter()
                .fold(f64::NEG_INFINITY, f64::max);
            let sel = maximise_keep_exactly(&s, k, SearchLimit::unlimited()).unwrap();
            check(&sel, &s, k);
            assert!(sel.optimal, "case {case}");
            assert_eq!(sel.bound, sel.value);
            assert!(
                (sel.value - truth).abs() < 1e-9,
                "case {case}: n = {n}, k = {k}: {} vs brute force {truth}",
                sel.value
            );
            let greedy = greedy_keep_exactly(&s, k).unwrap();
            check(&greedy, &s, k);
            assert!(greedy.value <= truth + 1e-9 && greedy.bound >= truth - 1e-9);
            // Stopped early: a valid bound all the same.
            for nodes in [1, 3, 10] {
                let early = maximise_keep_exactly(&s, k, SearchLimit::nodes(nodes)).unwrap();
                check(&early, &s, k);
                assert!(early.value <= truth + 1e-9, "case {case}");
                assert!(
                    early.bound >= truth - 1e-9,
                    "case {case}: {early:?} vs {truth}"
                );
                assert!(early.nodes <= nodes);
            }
            // Deterministic.
            assert_eq!(
                sel,
                maximise_keep_exactly(&s, k, SearchLimit::unlimited()).unwrap()
            );
        }
    }

    #[test]
    fn equals_brute_force_on_dense_pair_spectra() {
        // Many pairs of both signs: the Gilmore–Lawler caps and the tuned splits at work.
        for seed in 0..12 {
            let n = 14;
            let s = singles_and_pairs(n, 30 + 5 * seed as usize, seed);
            for k in [2, 5, 7, 10, 12, 13] {
                let truth = s
                    .eval(&all_k_subsets(n, k))
                    .into_iter()
                    .fold(f64::NEG_INFINITY, f64::max);
                let sel = maximise_keep_exactly(&s, k, SearchLimit::unlimited()).unwrap();
                check(&sel, &s, k);
                assert!(
                    sel.optimal && (sel.value - truth).abs() < 1e-9,
                    "seed {seed} k {k}"
                );
                let early = maximise_keep_exactly(&s, k, SearchLimit::nodes(2)).unwrap();
                assert!(early.bound >= truth - 1e-9, "seed {seed} k {k}");
            }
        }
    }

    #[test]
    fn node_limit_reports_a_gap() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 40;
        let pool: Vec<u32> = (0..n as u32).collect();
        let s = random_spectrum(n, &pool, 400, 2, Basis::Moebius, &mut rng);
        let sel = maximise_keep_exactly(&s, 20, SearchLimit::nodes(5)).unwrap();
        check(&sel, &s, 20);
        assert_eq!(sel.nodes, 5);
        assert!(!sel.optimal);
        assert!(sel.bound > sel.value, "{sel:?}");
        let full = maximise_keep_exactly(&s, 20, SearchLimit::unlimited()).unwrap();
        assert!(full.optimal);
        assert!(full.value >= sel.value - 1e-9 && full.value <= sel.bound + 1e-9);
        assert_eq!(
            sel,
            maximise_keep_exactly(&s, 20, SearchLimit::nodes(5)).unwrap()
        );
    }

    #[test]
    fn edge_cases() {
        let s = Spectrum::from_terms(
            4,
            Basis::Moebius,
            [
                (Subset::empty(), 1.5),
                (Subset::singleton(1), 2.0),
                (Subset::from_indices([1, 2]), -3.0),
            ],
        );
        let none = maximise_keep_exactly(&s, 0, SearchLimit::default()).unwrap();
        assert_eq!(
            (none.kept.clone(), none.value, none.optimal),
            (vec![], 1.5, true)
        );
        let all = maximise_keep_exactly(&s, 4, SearchLimit::default()).unwrap();
        assert_eq!(all.kept, vec![0, 1, 2, 3]);
        assert!((all.value - 0.5).abs() < 1e-12 && all.optimal);
        // Player 1 with two fillers (0 and 3), never 2.
        let two = maximise_keep_exactly(&s, 3, SearchLimit::default()).unwrap();
        assert_eq!(two.kept, vec![0, 1, 3]);
        assert!((two.value - 3.5).abs() < 1e-12);
        assert!(maximise_keep_exactly(&s, 5, SearchLimit::default()).is_err());
        assert!(greedy_keep_exactly(&s, 5).is_err());
        let empty = Spectrum::new(0, Basis::Fourier);
        let sel = maximise_keep_exactly(&empty, 0, SearchLimit::default()).unwrap();
        assert_eq!((sel.kept.len(), sel.value, sel.optimal), (0, 0.0, true));
        // Untouched players only: fillers, smallest first.
        let flat = Spectrum::from_terms(6, Basis::Fourier, [(Subset::empty(), 2.0)]);
        let sel = maximise_keep_exactly(&flat, 3, SearchLimit::default()).unwrap();
        assert_eq!(sel.kept, vec![0, 1, 2]);
    }

    /// Random singles and pairs over all of `0..n`, U[-1, 1].
    fn singles_and_pairs(n: usize, pairs: usize, seed: u64) -> Spectrum {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = Spectrum::new(n, Basis::Fourier);
        for i in 0..n as u32 {
            s.add(Subset::singleton(i), rng.random_range(-1.0..1.0));
        }
        let mut added = 0;
        while added < pairs {
            let (i, j) = (rng.random_range(0..n as u32), rng.random_range(0..n as u32));
            let set = Subset::from_indices([i, j]);
            if set.len() == 2 && s.get(&set) == 0.0 {
                s.add(set, rng.random_range(-1.0..1.0));
                added += 1;
            }
        }
        s
    }

    /// Release-mode timings (`cargo test --release -- --ignored --nocapture timings`).
    #[test]
    #[ignore]
    fn timings() {
        for (n, pairs, ks, limit) in [
            (27, 351, [13, 18, 22], SearchLimit::unlimited()),
            (
                96,
                404,
                [48, 64, 77],
                SearchLimit::time(Duration::from_secs(10)),
            ),
            (96, 404, [48, 64, 77], SearchLimit::default()),
        ] {
            let s = singles_and_pairs(n, pairs, 1);
            for k in ks {
                let t = Instant::now();
                let sel = maximise_keep_exactly(&s, k, limit).unwrap();
                let g = greedy_keep_exactly(&s, k).unwrap();
                println!(
                    "n = {n}, terms = {}, k = {k}: value {:.4} bound {:.4} gap {:.4} optimal {} \
                     nodes {} in {:.3} s (greedy {:.4})",
                    s.len(),
                    sel.value,
                    sel.bound,
                    sel.gap(),
                    sel.optimal,
                    sel.nodes,
                    t.elapsed().as_secs_f64(),
                    g.value
                );
            }
        }
    }
}
