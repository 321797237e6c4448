//! The environment as the host shows it to a plugin: `ORBIT_*` and pod
//! identity variables, with secret values withheld.

/// The value of one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    Plain(String),
    /// Set, but a secret: the host does not show the value.
    Withheld,
}

/// The variables, in the order the host gave them.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: Vec<(String, EnvValue)>,
}

impl Env {
    pub fn new(vars: impl IntoIterator<Item = (String, EnvValue)>) -> Self {
        Env {
            vars: vars.into_iter().collect(),
        }
    }

    /// The variable's value. If a name occurs twice the later one wins, as in
    /// a Kubernetes container spec.
    pub fn get(&self, name: &str) -> Option<&EnvValue> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The plain value, if the variable is set and not withheld.
    pub fn plain(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(EnvValue::Plain(v)) => Some(v),
            _ => None,
        }
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every variable name, once each, in first-seen order.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (n, _) in &self.vars {
            if !out.contains(&n.as_str()) {
                out.push(n);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_wins_and_withheld_is_not_plain() {
        let env = Env::new([
            ("A".to_string(), EnvValue::Plain("1".into())),
            ("A".to_string(), EnvValue::Plain("2".into())),
            ("S".to_string(), EnvValue::Withheld),
        ]);
        assert_eq!(env.plain("A"), Some("2"));
        assert_eq!(env.plain("S"), None);
        assert!(env.is_set("S"));
        assert_eq!(env.names(), ["A", "S"]);
    }
}
