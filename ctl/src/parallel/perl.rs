//! Perl replacement strings: `{= perl =}`, `--rpl`'s and `--plus`'s, evaluated where GNU
//! parallel evaluates them, on the machine that builds the command lines, by one `perl`
//! process for the whole run (Perl is on every Debian and Ubuntu machine).
//!
//! An expression sees what it sees in GNU parallel: `$_` (the argument, which it changes),
//! `@arg` (the job's arguments from `$arg[1]`), `$job->seq()` and `seq()`,
//! `total_jobs()`, `Q()` (shell quoting), `uq()` (leave the value unquoted), `skip()` (do
//! not run the job) and the date helpers (`yyyy_mm_dd()`, ...). The job slot (`slot()`) is
//! not known where lines are built: an expression asking for it fails the run, saying so.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// What an expression made of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    pub value: String,
    /// `uq()` was called: the value goes in unquoted.
    pub unquoted: bool,
    /// `skip()` was called: the job does not run.
    pub skip: bool,
}

/// Why an expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PerlError {
    #[error("cannot run perl for the {{= … =}} expressions ({0}): install perl, or drop them")]
    Start(std::io::Error),
    #[error("perl stopped while evaluating the {{= … =}} expressions: {0}")]
    Lost(String),
    #[error("cannot use the perl expression `{code}`: {why}")]
    Bad { code: String, why: String },
    #[error("the perl expression `{0}` made a value that is not UTF-8 text (it cut a character?)")]
    NotText(String),
}

/// The harness perl runs: requests and answers are fields, each its length in bytes on a
/// line, then its bytes.
const HARNESS: &str = r#"
use strict; use warnings; use POSIX qw(strftime);
binmode STDIN; binmode STDOUT; $| = 1;
our (@arg, $seq, $total, $skip, $uq);
my %compiled;
sub field { my $len = <STDIN>; defined $len or exit 0; chomp $len; my $buf = '';
  while (length $buf < $len) { read(STDIN, $buf, $len - length $buf, length $buf) or exit 1 } $buf }
sub answer { for (@_) { print length($_), "\n", $_ } }
sub Q { my $s = shift; return "''" if $s eq '';
  return $s unless $s =~ /[^-_.+a-z0-9\/]/i;
  $s =~ s/'/'"'"'/g; $s = "'$s'"; $s =~ s/^''//; $s =~ s/''$//; $s }
sub pQ { my $s = shift; $s =~ s/[\\\"\$\@]/\\$&/g if defined $s; $s }
sub seq { $seq } sub total_jobs { $total } sub skip { $skip = 1 } sub uq { $uq = 1 }
sub slot { die "the job slot (slot(), {%}) is not known where marmotctl parallel builds lines\n" }
sub uniq { my %seen; grep { !$seen{$_}++ } @_ }
sub make_regexp_ungreedy { my ($re) = @_; my ($out, $class, $escape, $found) = ('', 0, 0, 0);
  for my $c (split //, $re) {
    if ($found) { $out .= '?' if $c ne '?'; $found = 0 }
    $out .= $c;
    if ($escape) { $escape = 0; next } if ($c eq '\\') { $escape = 1; next }
    if ($c eq '[') { $class = 1; next } if ($class) { $class = 0 if $c eq ']'; next }
    $found = 1 if $c =~ /[*}+]/ }
  $out .= '?' if $found; $out }
sub yyyy_mm_dd_hh_mm_ss { strftime("%Y-%m-%dT%H:%M:%S", localtime) }
sub yyyy_mm_dd_hh_mm { strftime("%Y-%m-%dT%H:%M", localtime) }
sub yyyy_mm_dd { strftime("%Y-%m-%d", localtime) }
sub hh_mm_ss { strftime("%H:%M:%S", localtime) }
sub hh_mm { strftime("%H:%M", localtime) }
sub yyyymmddhhmmss { strftime("%Y%m%d%H%M%S", localtime) }
sub yyyymmddhhmm { strftime("%Y%m%d%H%M", localtime) }
sub yyyymmdd { strftime("%Y%m%d", localtime) }
sub hhmmss { strftime("%H%M%S", localtime) }
sub hhmm { strftime("%H%M", localtime) }
{ package Job; sub seq { $main::seq } sub slot { main::slot() } sub skip { main::skip() } }
while (1) {
  my $kind = field();
  if ($kind eq 'J') { $seq = field(); $total = field(); my $n = field();
    @arg = (undef, map { field() } 1 .. $n); next }
  my $code = field(); my $value = field();
  my $sub = $compiled{$code} //= eval "sub { no strict; no warnings; my \$job = shift; $code\n}";
  if (!$sub) { answer('E', "$@"); next }
  local $_ = $value; $skip = 0; $uq = 0;
  if (!eval { $sub->(bless {}, 'Job'); 1 }) { answer('E', "$@"); next }
  answer(($skip ? 's' : '') . ($uq ? 'u' : '') . 'o', defined $_ ? "$_" : '');
}
"#;

/// One perl process, evaluating expressions job after job.
pub struct Perl {
    child: Child,
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Perl {
    pub fn start() -> Result<Perl, PerlError> {
        let mut child = Command::new("perl")
            .args(["-e", HARNESS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PerlError::Start)?;
        let to = BufWriter::new(child.stdin.take().expect("piped"));
        let from = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Perl { child, to, from })
    }

    /// The job the next expressions are evaluated for.
    pub fn job(&mut self, seq: u64, total: u64, args: &[&str]) -> Result<(), PerlError> {
        let mut fields = vec!["J".to_string(), seq.to_string(), total.to_string()];
        fields.push(args.len().to_string());
        fields.extend(args.iter().map(|a| a.to_string()));
        self.send(&fields)
    }

    /// `code` run with `$_` set to `value`.
    pub fn eval(&mut self, code: &str, value: &str) -> Result<Evaluated, PerlError> {
        self.send(&["E".to_string(), code.to_string(), value.to_string()])?;
        self.to.flush().map_err(|e| PerlError::Lost(e.to_string()))?;
        let flags = self.field()?;
        let value =
            String::from_utf8(self.field()?).map_err(|_| PerlError::NotText(code.into()))?;
        let flags = String::from_utf8_lossy(&flags);
        if flags == "E" {
            let why = value.lines().next().unwrap_or("it does not compile").to_string();
            return Err(PerlError::Bad { code: code.to_string(), why });
        }
        Ok(Evaluated { value, unquoted: flags.contains('u'), skip: flags.contains('s') })
    }

    fn send(&mut self, fields: &[String]) -> Result<(), PerlError> {
        for field in fields {
            write!(self.to, "{}\n{field}", field.len())
                .map_err(|e| PerlError::Lost(e.to_string()))?;
        }
        Ok(())
    }

    fn field(&mut self) -> Result<Vec<u8>, PerlError> {
        let lost = |why: &str| PerlError::Lost(why.to_string());
        let mut len = String::new();
        self.from.read_line(&mut len).map_err(|e| lost(&e.to_string()))?;
        let len: usize = len.trim_end().parse().map_err(|_| lost("it answered nothing"))?;
        let mut bytes = vec![0; len];
        self.from.read_exact(&mut bytes).map_err(|e| lost(&e.to_string()))?;
        Ok(bytes)
    }
}

impl Drop for Perl {
    fn drop(&mut self) {
        // Its stdin closes with it: it ends; waited for so that no zombie stays.
        let _ = self.to.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_see_what_gnu_parallel_gives_them() {
        let mut perl = Perl::start().unwrap();
        perl.job(3, 5, &["a.tar.gz", "b"]).unwrap();
        let v = |perl: &mut Perl, code: &str, value: &str| perl.eval(code, value).unwrap();
        assert_eq!(v(&mut perl, "s/\\.gz$//", "a.tar.gz").value, "a.tar");
        assert_eq!(v(&mut perl, "$_ = $job->seq() . '/' . total_jobs()", "x").value, "3/5");
        assert_eq!(v(&mut perl, "$_ = $arg[2] . $arg[1]", "").value, "ba.tar.gz");
        assert_eq!(v(&mut perl, "$_ = Q($_)", "it's").value, "'it'\"'\"'s'");
        assert_eq!(v(&mut perl, "$_ = pQ($_)", r#"a\"$@b"#).value, r#"a\\\"\$\@b"#);
        let unquoted = v(&mut perl, "uq()", "a b");
        assert!(unquoted.unquoted && !unquoted.skip);
        assert!(v(&mut perl, "skip() if $_ eq 'b'", "b").skip);
        assert!(!v(&mut perl, "skip() if $_ eq 'b'", "c").skip);
        assert_eq!(v(&mut perl, "$_ = \"x\\ny\"", "").value, "x\ny", "any bytes come back");
        let bad = perl.eval("$_ = (", "x").unwrap_err().to_string();
        assert!(bad.contains("cannot use the perl expression"), "{bad}");
        let slot = perl.eval("$_ = slot()", "x").unwrap_err().to_string();
        assert!(slot.contains("job slot"), "{slot}");
        let cut = perl.eval("$_ = substr($_, 1)", "é").unwrap_err().to_string();
        assert!(cut.contains("not UTF-8"), "{cut}");
        assert_eq!(v(&mut perl, "$_ .= '!'", "still there").value, "still there!");
    }
}
