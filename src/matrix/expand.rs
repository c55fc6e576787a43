//! Axes to combinations, the way GitHub Actions expands a matrix: the
//! product of the axes, minus `exclude`, plus or extended by `include`.

use super::file::{mode_str, Axes, Axis, Combo};

impl Combo {
    /// The value of `axis` as text, for comparing and naming.
    pub(super) fn get(&self, axis: Axis) -> Option<String> {
        match axis {
            Axis::Version => self.version.as_ref().map(|v| v.0.trim().to_string()),
            Axis::Followers => self.followers.map(|n| n.to_string()),
            Axis::Slots => self.slots.map(|b| b.to_string()),
            Axis::Mode => self.mode.map(|m| mode_str(m).to_string()),
            Axis::Box => self.box_name.clone(),
            Axis::Provider => self.provider.map(|p| p.as_str().to_string()),
        }
    }

    fn set_from(&mut self, other: &Combo, axis: Axis) {
        match axis {
            Axis::Version => self.version = other.version.clone(),
            Axis::Followers => self.followers = other.followers,
            Axis::Slots => self.slots = other.slots,
            Axis::Mode => self.mode = other.mode,
            Axis::Box => self.box_name = other.box_name.clone(),
            Axis::Provider => self.provider = other.provider,
        }
    }
}

impl Axes {
    pub(super) fn has(&self, axis: Axis) -> bool {
        match axis {
            Axis::Version => !self.version.is_empty(),
            Axis::Followers => !self.followers.is_empty(),
            Axis::Slots => !self.slots.is_empty(),
            Axis::Mode => !self.mode.is_empty(),
            Axis::Box => !self.box_name.is_empty(),
            Axis::Provider => !self.provider.is_empty(),
        }
    }

    fn is_empty(&self) -> bool {
        !Axis::ALL.iter().any(|&a| self.has(a))
    }

    /// Every combination of the axes' values, first axis outermost; none without axes.
    fn product(&self) -> Vec<Combo> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut combos = vec![Combo::default()];
        combos = spread(combos, &self.version, |c, v| c.version = Some(v.clone()));
        combos = spread(combos, &self.followers, |c, v| c.followers = Some(*v));
        combos = spread(combos, &self.slots, |c, v| c.slots = Some(*v));
        combos = spread(combos, &self.mode, |c, v| c.mode = Some(*v));
        combos = spread(combos, &self.box_name, |c, v| c.box_name = Some(v.clone()));
        spread(combos, &self.provider, |c, v| c.provider = Some(*v))
    }
}

/// Each combination once per value (an empty axis leaves them as they are).
fn spread<T>(combos: Vec<Combo>, values: &[T], set: impl Fn(&mut Combo, &T)) -> Vec<Combo> {
    if values.is_empty() {
        return combos;
    }
    let mut out = Vec::with_capacity(combos.len() * values.len());
    for c in &combos {
        for v in values {
            let mut c = c.clone();
            set(&mut c, v);
            out.push(c);
        }
    }
    out
}

/// GitHub Actions' semantics: the product of the axes; minus every
/// combination that matches all keys of an `exclude` entry; then each
/// `include` entry extends every original combination whose axis values it
/// does not contradict (adding its other keys, and its steps), or, matching
/// none, is a combination of its own. Entries never extend each other's new
/// combinations. No axes and no includes: one cell, the base spec itself.
pub(super) fn expand(axes: &Axes, exclude: &[Combo], include: &[Combo]) -> Vec<Combo> {
    let excluded = |c: &Combo| exclude.iter().any(|e| Axis::ALL.iter().all(|&a| e.get(a).is_none() || e.get(a) == c.get(a)));
    let mut combos: Vec<Combo> = axes.product().into_iter().filter(|c| !excluded(c)).collect();
    let original = combos.len();
    for inc in include {
        let mut matched = false;
        for c in &mut combos[..original] {
            let fits = Axis::ALL.iter().all(|&a| !axes.has(a) || inc.get(a).is_none() || inc.get(a) == c.get(a));
            if fits {
                for a in Axis::ALL.into_iter().filter(|&a| !axes.has(a) && inc.get(a).is_some()) {
                    c.set_from(inc, a);
                }
                c.steps.extend(inc.steps.iter().cloned());
                matched = true;
            }
        }
        if !matched {
            combos.push(inc.clone());
        }
    }
    if combos.is_empty() && axes.is_empty() && include.is_empty() {
        combos.push(Combo::default());
    }
    combos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes(yaml: &str) -> Axes {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn combos(yaml: &str) -> Vec<Combo> {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// The combinations as `key=value` strings, for compact assertions.
    fn show(cs: &[Combo]) -> Vec<String> {
        cs.iter()
            .map(|c| Axis::ALL.iter().filter_map(|&a| c.get(a).map(|v| format!("{}={v}", a.key()))).collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn product_size_and_order() {
        let a = axes("{version: [13, 15, 9.4], followers: [1, 2], slots: [true, false]}");
        let cs = expand(&a, &[], &[]);
        assert_eq!(cs.len(), 12);
        assert_eq!(show(&cs[..3]), ["version=13 followers=1 slots=true", "version=13 followers=1 slots=false", "version=13 followers=2 slots=true"]);
        assert_eq!(show(&cs[11..]), ["version=9.4 followers=2 slots=false"]);
    }

    #[test]
    fn exclude_removes_every_match() {
        let a = axes("{version: [13, 15], followers: [1, 2], mode: [async, sync]}");
        let cs = expand(&a, &combos("[{version: 13, mode: sync}, {followers: 1, mode: async, version: 15}]"), &[]);
        assert_eq!(
            show(&cs),
            ["version=13 followers=1 mode=async", "version=13 followers=2 mode=async", "version=15 followers=1 mode=sync", "version=15 followers=2 mode=async", "version=15 followers=2 mode=sync"]
        );
    }

    /// The example of GitHub's documentation, with our keys:
    /// fruit -> version, animal -> followers, color -> mode, shape -> box.
    #[test]
    fn include_extends_or_adds_like_github() {
        let a = axes("{version: [13, 15], followers: [1, 2]}");
        let inc = combos(
            "[{mode: async}, {mode: sync, followers: 1}, {version: 13, box: b/round}, {version: 17}, {version: 17, followers: 1}]",
        );
        let cs = expand(&a, &[], &inc);
        assert_eq!(
            show(&cs),
            [
                "version=13 followers=1 mode=sync box=b/round",
                "version=13 followers=2 mode=async box=b/round",
                "version=15 followers=1 mode=sync",
                "version=15 followers=2 mode=async",
                "version=17",
                "version=17 followers=1",
            ]
        );
    }

    #[test]
    fn include_steps_go_to_the_matching_cells() {
        let a = axes("{version: [13, 15]}");
        let inc = combos("[{version: 15, steps: [{name: drill, run: 'true'}]}]");
        let cs = expand(&a, &[], &inc);
        assert_eq!(cs.len(), 2);
        assert!(cs[0].steps.is_empty());
        assert_eq!(cs[1].steps[0].name, "drill");
        assert_eq!(cs[1].steps[0].timeout, 300);
    }

    #[test]
    fn no_axes_is_the_base_or_the_includes() {
        assert_eq!(expand(&Axes::default(), &[], &[]), vec![Combo::default()]);
        let cs = expand(&Axes::default(), &[], &combos("[{version: 13}, {version: 15}]"));
        assert_eq!(show(&cs), ["version=13", "version=15"]);
    }
}
