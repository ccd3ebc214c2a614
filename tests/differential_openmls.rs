//! Differential tests (issue 18 part 2): atmls's patched openmls (vendor/openmls, on atmls's own
//! storage provider) against the published openmls 0.9.2, in the same groups.
//!
//! Every seed builds one group whose tracked members are split between the two
//! implementations, then applies a seeded random history: adds (commits without a path), removes
//! and self-updates (commits with a path), proposals by reference committed by another member,
//! application messages delivered out of order and one epoch late, reloads from storage, and
//! joins by Welcome. Filler leaves (KeyPackages made by either side that never join) give the
//! tree its size. Every message made by one implementation is processed by members of both.
//! After every step, all tracked members must hold the same epoch, group context, tree hash,
//! epoch authenticator, exported secret, ratchet tree and member list, and every joiner's
//! Welcome must land it in that same state. Any refusal of an honest message is a failure.
//!
//! CI runs `DEFAULT_SEEDS` small groups and one group of `DEFAULT_LARGE` members. Longer runs:
//! `ATMLS_DIFF_SEEDS=2000 ATMLS_DIFF_FIRST=0 ATMLS_DIFF_LARGE=10000 cargo test --release
//! --test differential_openmls -- --nocapture` (README, "Differential tests").

mod common;
mod differential_support;

use differential_support::{patched, upstream, Rng, Snapshot};

const DEFAULT_SEEDS: u64 = 24;
const DEFAULT_STEPS: usize = 40;
const DEFAULT_LARGE: usize = 2_000;
const LARGE_STEPS: usize = 12;

/// Which openmls a tracked member runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Patched,
    Upstream,
}

/// A client that has published a KeyPackage and waits for its Welcome.
enum Joiner {
    P(patched::Client),
    U(upstream::Client),
}

enum Member {
    P(patched::Member),
    U(upstream::Member),
}

/// Calls the same method on whichever side `$m` is.
macro_rules! on {
    ($m:expr, $x:ident => $e:expr) => {
        match $m {
            Member::P($x) => $e,
            Member::U($x) => $e,
        }
    };
}

use differential_support::Event;

impl Member {
    fn side(&self) -> Side {
        match self {
            Member::P(_) => Side::Patched,
            Member::U(_) => Side::Upstream,
        }
    }
}

struct Tracked {
    name: String,
    member: Member,
}

/// A message sent in an earlier epoch, delivered late to the members that were there.
struct Late {
    bytes: Vec<u8>,
    text: Vec<u8>,
    to: Vec<String>,
}

/// What a run did, for the summary line (and to see that every kind of operation ran).
#[derive(Default, Debug)]
struct Stats {
    add_commits: usize,
    remove_commits: usize,
    update_commits: usize,
    proposals: usize,
    proposal_commits: usize,
    joins_patched: usize,
    joins_upstream: usize,
    messages_read: usize,
    late_messages_read: usize,
    reloads: usize,
    largest_group: usize,
}

impl Stats {
    fn absorb(&mut self, o: &Stats) {
        self.add_commits += o.add_commits;
        self.remove_commits += o.remove_commits;
        self.update_commits += o.update_commits;
        self.proposals += o.proposals;
        self.proposal_commits += o.proposal_commits;
        self.joins_patched += o.joins_patched;
        self.joins_upstream += o.joins_upstream;
        self.messages_read += o.messages_read;
        self.late_messages_read += o.late_messages_read;
        self.reloads += o.reloads;
        self.largest_group = self.largest_group.max(o.largest_group);
    }
}

struct Run {
    seed: u64,
    rng: Rng,
    dir: tempfile::TempDir,
    members: Vec<Tracked>,
    fillers_p: patched::Fillers,
    fillers_u: upstream::Fillers,
    late: Vec<Late>,
    next_name: usize,
    step: usize,
    stats: Stats,
}

impl Run {
    fn new(seed: u64) -> Run {
        Run {
            seed,
            rng: Rng::new(seed),
            dir: tempfile::tempdir().expect("temp dir"),
            members: Vec::new(),
            fillers_p: patched::Fillers::default(),
            fillers_u: upstream::Fillers::default(),
            late: Vec::new(),
            next_name: 0,
            step: 0,
            stats: Stats::default(),
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "differential seed {} step {}: {what} (members: {})",
            self.seed,
            self.step,
            self.members
                .iter()
                .map(|t| format!("{}:{:?}", t.name, t.member.side()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn pick_side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Patched
        } else {
            Side::Upstream
        }
    }

    fn new_joiner(&mut self, side: Side) -> (String, Joiner, Vec<u8>) {
        let name = format!("m{}", self.next_name);
        self.next_name += 1;
        let path = self.dir.path().join(format!("{name}.sqlite"));
        let joiner = match side {
            Side::Patched => Joiner::P(patched::Client::new(&name, &path)),
            Side::Upstream => Joiner::U(upstream::Client::new(&name, &path)),
        };
        let kp = match &joiner {
            Joiner::P(c) => c.key_package(),
            Joiner::U(c) => c.key_package(),
        };
        (name, joiner, kp)
    }

    fn filler_key_packages(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| match self.pick_side() {
                Side::Patched => self.fillers_p.key_package(),
                Side::Upstream => self.fillers_u.key_package(),
            })
            .collect()
    }

    /// The group, created by a member of `side`.
    fn create(&mut self, side: Side) {
        let (name, joiner, _) = self.new_joiner(side);
        let gid = format!("differential-{}", self.seed).into_bytes();
        let member = match joiner {
            Joiner::P(c) => Member::P(patched::Member::create(c, &gid)),
            Joiner::U(c) => Member::U(upstream::Member::create(c, &gid)),
        };
        self.members.push(Tracked { name, member });
    }

    fn pick_member(&mut self) -> usize {
        self.rng.below(self.members.len())
    }

    /// Leaves of the tree other than `except`'s, as the committer sees them.
    fn other_leaves(&self, except: usize) -> Vec<u32> {
        let me = on!(&self.members[except].member, m => m.leaf());
        on!(&self.members[except].member, m => m.leaves())
            .into_iter()
            .filter(|l| *l != me)
            .collect()
    }

    /// Delivers `bytes` from member `from` to every other tracked member; merges commits, and
    /// drops the members the commit removed.
    fn deliver_handshake(&mut self, from: usize, bytes: &[u8], what: &str) {
        let mut removed = Vec::new();
        for i in 0..self.members.len() {
            if i == from {
                continue;
            }
            let r = on!(&mut self.members[i].member, m => m.process(bytes));
            match r {
                Ok(Event::Commit { still_member }) => {
                    if !still_member {
                        removed.push(i);
                    }
                }
                Ok(Event::Proposal) => {}
                Ok(Event::App(_)) => self.fail(&format!("{what} read as an application message")),
                Err(e) => {
                    let who = format!(
                        "{} ({:?}) refused {what} from {} ({:?}): {e}",
                        self.members[i].name,
                        self.members[i].member.side(),
                        self.members[from].name,
                        self.members[from].member.side()
                    );
                    self.fail(&who)
                }
            }
        }
        for i in removed.into_iter().rev() {
            let gone = self.members.remove(i);
            self.late
                .iter_mut()
                .for_each(|l| l.to.retain(|n| *n != gone.name));
        }
    }

    fn join(&mut self, joiners: Vec<(String, Joiner)>, welcome: &[u8]) {
        for (name, joiner) in joiners {
            let member = match joiner {
                Joiner::P(c) => patched::Member::join(c, welcome).map(Member::P),
                Joiner::U(c) => upstream::Member::join(c, welcome).map(Member::U),
            };
            match member {
                Ok(member) => {
                    match member.side() {
                        Side::Patched => self.stats.joins_patched += 1,
                        Side::Upstream => self.stats.joins_upstream += 1,
                    }
                    self.members.push(Tracked { name, member })
                }
                Err(e) => self.fail(&format!("Welcome refused by {name}: {e}")),
            }
        }
    }

    /// Adds tracked joiners and fillers in one commit (no path).
    fn op_add(&mut self) {
        let sides: Vec<Side> = (0..self.rng.below(3)).map(|_| self.pick_side()).collect();
        let fillers = self.rng.below(4);
        self.add(&sides, fillers);
    }

    /// Adds one tracked joiner of each of `sides` and `fillers` fillers, by a random member.
    fn add(&mut self, sides: &[Side], fillers: usize) {
        let committer = self.pick_member();
        let mut joiners = Vec::new();
        let mut kps = Vec::new();
        for side in sides {
            let (name, j, kp) = self.new_joiner(*side);
            joiners.push((name, j));
            kps.push(kp);
        }
        kps.extend(self.filler_key_packages(fillers));
        if kps.is_empty() {
            return;
        }
        let r = on!(&mut self.members[committer].member, m => m.add(&kps));
        let (commit, welcome) = r.unwrap_or_else(|e| self.fail(&format!("add: {e}")));
        self.stats.add_commits += 1;
        self.deliver_handshake(committer, &commit, "an add commit");
        self.join(joiners, &welcome);
    }

    /// Removes one to three other leaves (tracked or filler); a commit with a path.
    fn op_remove(&mut self) {
        let committer = self.pick_member();
        let mut leaves = self.other_leaves(committer);
        if leaves.is_empty() {
            return;
        }
        let n = 1 + self.rng.below(3.min(leaves.len()));
        let mut chosen = Vec::new();
        for _ in 0..n {
            chosen.push(leaves.swap_remove(self.rng.below(leaves.len())));
        }
        let r = on!(&mut self.members[committer].member, m => m.remove(&chosen));
        let commit = r.unwrap_or_else(|e| self.fail(&format!("remove {chosen:?}: {e}")));
        self.stats.remove_commits += 1;
        self.deliver_handshake(committer, &commit, "a remove commit");
    }

    fn op_update(&mut self) {
        let committer = self.pick_member();
        let r = on!(&mut self.members[committer].member, m => m.update());
        let commit = r.unwrap_or_else(|e| self.fail(&format!("self-update: {e}")));
        self.stats.update_commits += 1;
        self.deliver_handshake(committer, &commit, "a self-update commit");
    }

    /// One to three proposals by reference from random members, committed by another member.
    fn op_proposals(&mut self) {
        if self.members.len() < 2 {
            return;
        }
        let committer = self.pick_member();
        let committer_leaf = on!(&self.members[committer].member, m => m.leaf());
        let mut joiners = Vec::new();
        let mut targeted = vec![committer_leaf];
        let mut updaters = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let proposer = self.pick_member();
            let proposer_leaf = on!(&self.members[proposer].member, m => m.leaf());
            let proposal = match self.rng.below(3) {
                0 => {
                    let kp = if self.rng.below(2) == 0 {
                        let side = self.pick_side();
                        let (name, j, kp) = self.new_joiner(side);
                        joiners.push((name, j));
                        kp
                    } else {
                        self.filler_key_packages(1).remove(0)
                    };
                    on!(&mut self.members[proposer].member, m => m.propose_add(&kp))
                }
                1 => {
                    let candidates: Vec<u32> = self
                        .other_leaves(proposer)
                        .into_iter()
                        .filter(|l| !targeted.contains(l) && !updaters.contains(l))
                        .collect();
                    if candidates.is_empty() {
                        continue;
                    }
                    let leaf = candidates[self.rng.below(candidates.len())];
                    targeted.push(leaf);
                    on!(&mut self.members[proposer].member, m => m.propose_remove(leaf))
                }
                _ => {
                    // The committer cannot commit its own update; one update per leaf.
                    if proposer == committer
                        || targeted.contains(&proposer_leaf)
                        || updaters.contains(&proposer_leaf)
                    {
                        continue;
                    }
                    updaters.push(proposer_leaf);
                    on!(&mut self.members[proposer].member, m => m.propose_update())
                }
            };
            let bytes = proposal.unwrap_or_else(|e| self.fail(&format!("proposal: {e}")));
            self.stats.proposals += 1;
            self.deliver_handshake(proposer, &bytes, "a proposal");
        }
        let r = on!(&mut self.members[committer].member, m => m.commit_pending());
        let (commit, welcome) = r.unwrap_or_else(|e| self.fail(&format!("commit proposals: {e}")));
        self.stats.proposal_commits += 1;
        self.deliver_handshake(committer, &commit, "a commit of proposals");
        match welcome {
            Some(w) => self.join(joiners, &w),
            None if joiners.is_empty() => {}
            None => self.fail("proposed adds but no Welcome"),
        }
    }

    /// One to three messages from one member, read by the others in a random order; some are
    /// held back and delivered after the next commit.
    fn op_messages(&mut self) {
        let from = self.pick_member();
        let mut batch = Vec::new();
        for k in 0..1 + self.rng.below(3) {
            let text = format!("seed {} step {} msg {k}", self.seed, self.step).into_bytes();
            let bytes = on!(&mut self.members[from].member, m => m.send(&text));
            batch.push((bytes, text));
        }
        let names: Vec<String> = self.members.iter().map(|t| t.name.clone()).collect();
        if self.rng.below(4) == 0 {
            let (bytes, text) = batch.pop().expect("one message at least");
            let to = names
                .into_iter()
                .filter(|n| *n != self.members[from].name)
                .collect();
            self.late.push(Late { bytes, text, to });
        }
        for i in 0..self.members.len() {
            if i == from {
                continue;
            }
            let order = self.rng.permutation(batch.len());
            for k in order {
                self.read(i, &batch[k].0, &batch[k].1);
            }
        }
    }

    fn read(&mut self, i: usize, bytes: &[u8], text: &[u8]) {
        match on!(&mut self.members[i].member, m => m.process(bytes)) {
            Ok(Event::App(got)) if got == text => self.stats.messages_read += 1,
            Ok(Event::App(_)) => self.fail(&format!("{} read other text", self.members[i].name)),
            Ok(_) => self.fail("an application message read as a handshake"),
            Err(e) => self.fail(&format!(
                "{} ({:?}) could not read a message: {e}",
                self.members[i].name,
                self.members[i].member.side()
            )),
        }
    }

    /// Messages held back from an earlier epoch, now one or more epochs old (max_past_epochs 2).
    fn deliver_late(&mut self) {
        let late = std::mem::take(&mut self.late);
        for l in late {
            for name in &l.to {
                if let Some(i) = self.members.iter().position(|t| t.name == *name) {
                    self.read(i, &l.bytes, &l.text);
                    self.stats.late_messages_read += 1;
                }
            }
        }
    }

    fn reload_some(&mut self) {
        for i in 0..self.members.len() {
            if self.rng.below(8) == 0 {
                self.stats.reloads += 1;
                let r = on!(&mut self.members[i].member, m => m.reload());
                if let Err(e) = r {
                    self.fail(&format!("reload of {}: {e}", self.members[i].name));
                }
            }
        }
    }

    /// Every tracked member in the same state, and in the tree it holds.
    fn check(&self) {
        let snaps: Vec<(String, Side, Snapshot)> = self
            .members
            .iter()
            .map(|t| {
                let s = on!(&t.member, m => m.snapshot());
                (t.name.clone(), t.member.side(), s)
            })
            .collect();
        let (first_name, first_side, first) = &snaps[0];
        for (name, side, s) in &snaps[1..] {
            if let Some(field) = first.differs(s) {
                self.fail(&format!(
                    "{field} differs: {first_name} ({first_side:?}) vs {name} ({side:?})"
                ));
            }
        }
        for t in &self.members {
            let leaf = on!(&t.member, m => m.leaf());
            if !on!(&t.member, m => m.leaves()).contains(&leaf) {
                self.fail(&format!("{} not in its own tree", t.name));
            }
        }
    }

    fn step_once(&mut self) {
        let epoch_before = on!(&self.members[0].member, m => m.snapshot()).epoch;
        match self.rng.below(10) {
            0..=2 => self.op_add(),
            3 | 4 => self.op_remove(),
            5 => self.op_update(),
            6 | 7 => self.op_proposals(),
            _ => self.op_messages(),
        }
        if self.members.is_empty() {
            // The group emptied itself of tracked members; start again with a fresh one.
            let side = self.pick_side();
            self.create(side);
            self.late.clear();
            return;
        }
        let epoch_after = on!(&self.members[0].member, m => m.snapshot()).epoch;
        if epoch_after != epoch_before {
            self.deliver_late();
        }
        self.reload_some();
        self.check();
        let size = on!(&self.members[0].member, m => m.leaves()).len();
        self.stats.largest_group = self.stats.largest_group.max(size);
    }
}

fn seeds() -> std::ops::Range<u64> {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let first = env("ATMLS_DIFF_FIRST").unwrap_or(0);
    first..first + env("ATMLS_DIFF_SEEDS").unwrap_or(DEFAULT_SEEDS)
}

/// Small groups (up to a few dozen members), each seed a random history of `DEFAULT_STEPS`.
#[test]
fn differential_random_histories_agree() {
    let mut stats = Stats::default();
    for seed in seeds() {
        let mut run = Run::new(seed);
        let side = if seed % 2 == 0 {
            Side::Patched
        } else {
            Side::Upstream
        };
        run.create(side);
        while run.step < DEFAULT_STEPS {
            run.step_once();
            run.step += 1;
        }
        stats.absorb(&run.stats);
    }
    println!(
        "differential: seeds {:?}, no divergence: {stats:?}",
        seeds()
    );
}

/// One group of `ATMLS_DIFF_LARGE` (default 2,000) leaves, created by each side in turn, then
/// random operations on it.
#[test]
fn differential_large_group_agrees() {
    let n = std::env::var("ATMLS_DIFF_LARGE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LARGE);
    for (seed, side) in [(1_000_001, Side::Patched), (1_000_002, Side::Upstream)] {
        let mut run = Run::new(seed);
        run.create(side);
        let kps = run.filler_key_packages(n - 1);
        let r = on!(&mut run.members[0].member, m => m.add(&kps));
        r.unwrap_or_else(|e| run.fail(&format!("large add: {e}")));
        // Tracked members of both sides join the large group.
        run.add(&[Side::Patched, Side::Upstream], 0);
        run.check();
        while run.step < LARGE_STEPS {
            run.step_once();
            run.step += 1;
        }
        println!(
            "differential large group: seed {seed}, no divergence: {:?}",
            run.stats
        );
    }
}
