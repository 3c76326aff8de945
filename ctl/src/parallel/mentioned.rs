//! The variables a run's shell code mentions (`$NAME`, `${NAME...}`): GNU parallel's jobs
//! inherit every exported variable of the shell that starts them, and a line that reads
//! `"$VAR"` on a worker would read an empty one. So each variable the jobs' lines (and the
//! exported functions they may call) mention, and that is set here, goes with the run, but
//! for those that describe the machine a job runs on (`$HOME`, `$PATH`, ...), which are the
//! worker's, as with GNU parallel's remote machines.

/// Variables that are the worker's own: where and as whom a job runs.
const THE_WORKERS: &[&str] = &[
    "HOME",
    "HOSTNAME",
    "LOGNAME",
    "OLDPWD",
    "PATH",
    "PWD",
    "SHELL",
    "SHLVL",
    "TMPDIR",
    "USER",
    "PARALLEL_SEQ",
    "PARALLEL_JOBSLOT",
    "PARALLEL_TMP",
    "MARMOT_OUT",
    "MARMOT_UNIT",
];

/// The names `$NAME` and `${NAME` mention in `code`, each once, in the order first seen:
/// a name is a letter or `_`, then letters, digits and `_` (positional `$1`, `$@` and the
/// like are none).
pub fn names(code: &str) -> Vec<&str> {
    let mut found: Vec<&str> = vec![];
    let mut rest = code;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.strip_prefix('{').unwrap_or(rest);
        let starts = braced.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !starts {
            continue;
        }
        let len = braced.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        let name = &braced[..len.unwrap_or(braced.len())];
        if !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// The variables to send with a run whose shell code is `code`: each one it mentions that
/// is not the worker's own, not `sent` already, and set here (`value_of`), in the order
/// first mentioned.
pub fn to_send<'a>(
    code: impl IntoIterator<Item = &'a str>,
    sent: &[(String, String)],
    value_of: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = vec![];
    for code in code {
        for name in names(code) {
            let known = |list: &[(String, String)]| list.iter().any(|(k, _)| k == name);
            if THE_WORKERS.contains(&name) || known(sent) || known(&found) {
                continue;
            }
            if let Some(value) = value_of(name) {
                found.push((name.to_string(), value));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_the_shell_would_expand() {
        let code = r#"echo "$VAR" ${url}/x ${A_1:-d} $1 $@ $$ ${#} $_b $VAR 'x$' $"#;
        assert_eq!(names(code), ["VAR", "url", "A_1", "_b"]);
        assert!(names("no dollars here").is_empty());
        assert!(names("$9x ${}").is_empty());
    }

    #[test]
    fn what_is_mentioned_and_set_goes_but_the_workers_own_stays() {
        let set = |name: &str| match name {
            "VAR" | "HOME" | "PATH" | "HOMEDIR" | "F" | "G" => Some(format!("{name}!")),
            _ => None,
        };
        let sent = [("F".to_string(), "given".to_string())];
        let code = ["echo $VAR $HOME $PATH $unset ${HOMEDIR} $F", "$VAR $G"];
        let found = to_send(code, &sent, set);
        let pairs: Vec<(&str, &str)> =
            found.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("VAR", "VAR!"), ("HOMEDIR", "HOMEDIR!"), ("G", "G!")]);
        for own in THE_WORKERS {
            assert!(to_send([format!("${own}").as_str()], &[], |_| Some("x".into())).is_empty());
        }
    }
}
