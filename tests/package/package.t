#!/usr/bin/perl
# SPDX-License-Identifier: Apache-2.0
# tests/package/package.t - the Debian packages, built, checked, installed
# into this machine's own Apache, used and purged. Run as root by prove from
# a copy of the tree (scripts/test.sh):
#
#   HYDRA_SRC=<tree> prove tests/package/package.t
#
# 1. dpkg-buildpackage -us -uc -b in a scratch copy of HYDRA_SRC (the unit
#    tests are left to `make check`: DEB_BUILD_OPTIONS=nocheck);
# 2. lintian on the .changes: no error and no warning;
# 3. apt-get install ./libapache2-mod-hydra-signup_*.deb
#    ./hydra-signup-mailer_*.deb; the spool's owner, group and modes;
# 4. a private PostgreSQL on a free port, migrated by the packaged
#    /usr/share/hydra-signup/hydra-signup-migrate, and a tenant inserted;
# 5. a2enmod hydra_signup, a vhost on 127.0.0.1:<free port> (a2ensite, its
#    own Listen line), apache2ctl configtest, apache2ctl start;
# 6. the packaged sender, configured in /etc/hydra-signup/mailer.conf and
#    started as the service starts it (systemctl when systemd runs, else
#    /usr/libexec/hydra-signup/mailer-start as _hydra-mailer), delivers the
#    signup's mail to tools/smtp-sink.py; the mailed code verifies (200) and
#    the access token checks out;
# 7. always, also after a failure: the sender and apache2 stopped, the vhost
#    and the modules it enabled disabled, both packages purged, the system
#    user removed, and /etc/apache2, /var/lib/apache2, a2query, dpkg -V
#    apache2 and the passwd/group entries compared with what they were.
#
# A running system apache2 is stopped first and started again at the end;
# port 80 must be free, as apache2 starts with the distribution's ports.conf. Every port the test
# uses is picked free. HYDRA_KEEP=1 keeps the work directory.
use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA ();
use File::Basename qw(dirname);
use File::Find ();
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Fcntl qw(:flock);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use lib dirname(abs_path(__FILE__)) . '/lib';
use PackageTest qw(free_port port_busy tail_of tenant_sql);

my $SRC = abs_path($ENV{HYDRA_SRC} // dirname(abs_path(__FILE__)) . '/../..');
my @PKGS = qw(libapache2-mod-hydra-signup hydra-signup-mailer);
my $SITE = 'hydra-signup-pkgtest';
my $SITE_FILE = "/etc/apache2/sites-available/$SITE.conf";
my $SPOOL = '/var/spool/hydra-signup';
my $MAILER_CONF = '/etc/hydra-signup/mailer.conf';
my $USER = '_hydra-mailer';
my $FROM = 'bounces@pkgtest.example.net';
my $TENANT = 'pkgtest';
my $json = JSON::PP->new->canonical;
$ENV{DEBIAN_FRONTEND} = 'noninteractive';
$ENV{LC_ALL} = 'C.UTF-8';

if ($> != 0) {
    fail('tests/package/package.t runs as root (it installs packages)');
    done_testing();
    exit 1;
}

my $work = tempdir('/tmp/hydra-pkgtest.XXXXXX', CLEANUP => 0);
chmod 0755, $work;    # apt's _apt user reads the .debs, postgres the data
my $log = "$work/commands.log";

# ---- helpers -------------------------------------------------------------

# runs a command with its output appended to $log (or to FILE); exit code
sub run {
    my (@cmd) = @_;
    my $out = ref $cmd[0] eq 'HASH' ? (shift @cmd)->{log} : $log;
    open my $fh, '>>', $out or die "$out: $!";
    print $fh "\n\$ @cmd\n";
    close $fh;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    waitpid $pid, 0;
    return $? >> 8;
}

# output of a command (stderr to $log); exit code in $?
sub capture {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>>', $log;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $text, $mode) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $text;
    close $fh or die "$f: $!";
    chmod $mode, $f if defined $mode;
}

# waits (at most $secs) for $cond to return true; its last value
sub wait_for {
    my ($secs, $cond) = @_;
    my $until = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $until;
        sleep 0.2;
    }
}

sub installed {
    my ($p) = @_;
    my $s = capture('dpkg-query', '-W', '-f=${Status}', $p);
    return $s =~ /install ok installed/;
}

sub system_apache_pid {
    my $f = '/run/apache2/apache2.pid';
    my $pid = slurp($f) // return 0;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ && kill(0, $pid) ? $pid : 0;
}

my $systemd = -d '/run/systemd/system';

# What the test must leave as it found it.
sub snapshot {
    my %s;
    for my $root ('/etc/apache2', '/var/lib/apache2') {
        next unless -e $root;
        File::Find::find({ no_chdir => 1, wanted => sub {
            my $p = $File::Find::name;
            my @st = lstat $p or return;
            my $d = sprintf '%o %d:%d', $st[2], $st[4], $st[5];
            if (-l _) { $d .= ' -> ' . readlink $p }
            elsif (-f _) { $d .= ' ' . Digest::SHA->new(256)->addfile($p)->hexdigest }
            $s{$p} = $d;
        } }, $root);
    }
    for my $q ('-m', '-s', '-c') {
        $s{"a2query $q"} = join '', sort split /^/, capture('a2query', $q);
    }
    $s{'dpkg -V apache2'} = capture('dpkg', '-V', 'apache2');
    $s{"passwd $USER"} = capture('getent', 'passwd', $USER);
    $s{"group $USER"} = capture('getent', 'group', $USER);
    $s{'group www-data'} = capture('getent', 'group', 'www-data');
    $s{$SPOOL} = -e $SPOOL ? 'exists' : 'absent';
    $s{'apache2 running'} = system_apache_pid() ? 'yes' : 'no';
    $s{$_} = installed($_) ? 'installed' : 'not installed' for @PKGS;
    return \%s;
}

sub snapshot_diff {
    my ($a, $b) = @_;
    my @d;
    my %k = map { $_ => 1 } keys %$a, keys %$b;
    for my $k (sort keys %k) {
        my ($x, $y) = ($a->{$k} // '(none)', $b->{$k} // '(none)');
        push @d, "$k: before [$x] after [$y]" if $x ne $y;
    }
    return @d;
}

# ---- preconditions: nothing of ours there, the system apache2 stopped ----

# one run at a time on a machine: the packages and the system Apache are
# shared (another run waits, at most 30 minutes)
open my $lock, '>', '/run/lock/hydra-signup-package-test.lock' or die "lock: $!";
if (!flock($lock, LOCK_EX | LOCK_NB)) {
    diag('waiting for another run of tests/package/package.t');
    wait_for(1800, sub { flock($lock, LOCK_EX | LOCK_NB) })
        or BAIL_OUT('another run of tests/package/package.t held the lock for 30 minutes');
}

my $before = snapshot();
my @pre;
push @pre, "$_ is already installed" for grep { installed($_) } @PKGS;
push @pre, "$SPOOL exists" if -e $SPOOL;
push @pre, "$SITE_FILE exists" if -e $SITE_FILE;
# a running system apache2 is stopped for the test and started again after
my $was_running = system_apache_pid();
if ($was_running) {
    run('apache2ctl', 'stop');
    wait_for(30, sub { !system_apache_pid() })
        or push @pre, "the system apache2 (pid $was_running) did not stop";
}
push @pre, "port 80 is in use: the system apache2 could not start" if port_busy(80);
ok(!@pre, 'the machine is ready for the test') or diag(join "\n", @pre);
if (@pre) {
    run('apache2ctl', 'start') if $was_running && !system_apache_pid();
    system('rm', '-rf', $work);
    done_testing();
    exit 1;
}

# ---- the test body; cleanup runs whatever happens in it ------------------

my %started;    # what cleanup must undo
my ($sink_pid, $mailer_pid);
my $pg_data = "$work/pg/data";

sub must {
    my ($ok, $name, @diag) = @_;
    ok($ok, $name) or do { diag($_) for grep { defined } @diag; die "stopped after: $name\n" };
    return $ok;
}

# a signal (a time-out, ^C) ends the body like a failure: cleanup still runs
local $SIG{TERM} = local $SIG{INT} = local $SIG{HUP} = local $SIG{PIPE} = sub { die "killed by SIG$_[0]\n" };
my $body_ok = eval { body(); 1 };
my $err = $@;
$SIG{TERM} = $SIG{INT} = $SIG{HUP} = $SIG{PIPE} = 'IGNORE';    # let cleanup finish
fail("the test body: $err") unless $body_ok || $err =~ /^stopped after:/;
cleanup();
my $after = snapshot();
my @diff = snapshot_diff($before, $after);
ok(!@diff, 'the system Apache, dpkg and the passwd/group entries are as before')
    or diag(join "\n", @diff);
if ($ENV{HYDRA_KEEP}) {
    diag("work directory kept: $work");
} elsif (Test::More->builder->is_passing) {
    system('rm', '-rf', $work);
} else {
    diag("work directory kept for the logs: $work");
}
done_testing();

sub body {
    # ---- build --------------------------------------------------------
    my $tree = "$work/src";
    must(run('cp', '-a', "$SRC/.", $tree) == 0, "copy of $SRC");
    my $jobs = capture('nproc') =~ /(\d+)/ ? $1 : 1;
    local $ENV{DEB_BUILD_OPTIONS} = "nocheck parallel=$jobs";
    local $ENV{DEB_BUILD_PROFILES} = 'nocheck';
    my $rc = run({ log => "$work/build.log" }, 'sh', '-c',
        "cd '$tree' && dpkg-buildpackage -us -uc -b");
    must($rc == 0, 'dpkg-buildpackage -us -uc -b', tail_of("$work/build.log", 40));
    my @changes = glob "$work/*.changes";
    my %deb = map { $_ => (glob "$work/${_}_*.deb")[0] } @PKGS;
    must(@changes == 1 && (grep { defined $deb{$_} } @PKGS) == 2,
        'the build gave a .changes and both packages',
        "in $work: " . join ' ', map { s{.*/}{}r } glob "$work/*");

    # ---- lintian ------------------------------------------------------
    my $lint = capture('lintian', '--fail-on', 'error,warning', $changes[0]);
    my $lint_rc = $? >> 8;
    open my $lf, '>', "$work/lintian.log";
    print $lf $lint;
    close $lf;
    my @bad = grep { /^[EW]: / } split /\n/, $lint;
    ok($lint_rc == 0 && !@bad, 'lintian: no errors, no warnings')
        or diag("lintian exit $lint_rc\n$lint");

    # ---- install ------------------------------------------------------
    $started{packages} = 1;
    $rc = run({ log => "$work/apt.log" }, 'sh', '-c',
        "cd '$work' && apt-get -o DPkg::Lock::Timeout=600 install -y "
        . "--no-install-recommends ./" . join(' ./', map { $deb{$_} =~ s{.*/}{}r } @PKGS));
    must($rc == 0 && installed($PKGS[0]) && installed($PKGS[1]),
        'apt-get install of both .debs', tail_of("$work/apt.log", 30));
    ok(-f '/usr/lib/apache2/modules/mod_hydra_signup.so'
        && -f '/etc/apache2/mods-available/hydra_signup.load'
        && -x '/usr/bin/hydra-signup-mailer'
        && -x '/usr/share/hydra-signup/hydra-signup-migrate'
        && -f '/usr/share/hydra-signup/sql/001_schema.sql'
        && -f '/usr/share/man/man1/hydra-signup-mailer.1.gz'
        && -f '/lib/systemd/system/hydra-signup-mailer.service'
        && -f $MAILER_CONF,
        'the module, the sender, its man page, unit and config, the migrations');
    my $load = slurp('/etc/apache2/mods-available/hydra_signup.load') // '';
    like($load, qr/^# Depends: dbd$/m, 'hydra_signup.load pulls in dbd (and no socache module)');
    my @pw = getpwnam($USER);
    must(scalar @pw, "the system user $USER");
    my $www = getpwnam('www-data');
    my @wrong;
    for my $d ($SPOOL, map { "$SPOOL/$_" } qw(tmp new cur dead)) {
        my @st = stat $d;
        push @wrong, sprintf('%s: %s %d:%d', $d, @st ? sprintf('%o', $st[2] & 07777) : 'missing',
            $st[4] // -1, $st[5] // -1)
            unless @st && ($st[2] & 07777) == 02770 && $st[4] == $www && $st[5] == $pw[3];
    }
    ok(!@wrong, "spool directories: www-data:$USER, mode 2770") or diag(join "\n", @wrong);

    # ---- PostgreSQL, migrated by the packaged script -------------------
    my $pg_port;
    for (1 .. 5) {
        $pg_port = free_port();
        $started{pg} = 1;
        last if run('bash', '-c', ". '$SRC/scripts/lib/pg.sh'; hs_pg_start '$pg_data' $pg_port") == 0;
        $pg_port = undef;
    }
    must($pg_port, 'a private PostgreSQL', tail_of($log, 20));
    my $dsn = "host=127.0.0.1 port=$pg_port dbname=hydra user=hydra password=hydra";
    local $ENV{PSQL} = $ENV{HYDRA_PG_BIN} ? "$ENV{HYDRA_PG_BIN}/psql" : 'psql';
    # every numbered migration of the tree is installed and applied
    my @want = map { s{.*/}{}r } glob "$SRC/sql/[0-9][0-9][0-9]_*.sql";
    my $mig = capture('/usr/share/hydra-signup/hydra-signup-migrate', $dsn);
    must($? == 0 && @want && !grep({ $mig !~ /applied \Q$_\E/ } @want),
        'the packaged migrate script applies every migration (' . join(' ', @want) . ')',
        $mig, tail_of($log, 10));
    $mig = capture('/usr/share/hydra-signup/hydra-signup-migrate', $dsn);
    like($mig, qr/schema up to date/, 'run again, it changes nothing');
    my $sql = tenant_sql(slug => $TENANT, name => 'Package Test Hosting',
        plan => ['starter', 'The starter plan', '$5/mo'],
        node => ['pkgtest-node-1.example.net', 10]);
    must(run($ENV{PSQL}, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $dsn, '-c', $sql) == 0,
        "tenant $TENANT inserted", tail_of($log, 10));

    # ---- keys and the SMTP sink ----------------------------------------
    mkdir "$work/keys", 0700;
    for my $k (qw(code.secret jwt-hs256.key)) {
        must(run('sh', '-c', "openssl rand -hex 32 > '$work/keys/$k'") == 0, "key $k");
        chmod 0600, "$work/keys/$k";
    }
    mkdir "$work/mail";
    pipe(my $r, my $w) or die "pipe: $!";
    $sink_pid = fork() // die "fork: $!";
    if ($sink_pid == 0) {
        close $r;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $w or die;
        open STDERR, '>>', "$work/sink.log" or die;
        exec '/usr/bin/python3', "$SRC/tools/smtp-sink.py", '--port', 0,
            '--maildir', "$work/mail", '--envelope-log', "$work/envelope.log"
            or die "exec: $!";
    }
    close $w;
    my $line = '';
    my $rin = '';
    vec($rin, fileno($r), 1) = 1;
    for (my $until = time + 20; time < $until && $line !~ /\n/;) {
        next unless select(my $rout = $rin, undef, undef, 0.2) > 0;
        sysread($r, my $buf, 256) or last;
        $line .= $buf;
    }
    my ($smtp_port) = $line =~ /^listening on 127\.0\.0\.1:(\d+)/;
    must($smtp_port, 'the SMTP sink listens', $line, tail_of("$work/sink.log", 10));

    # ---- the packaged sender, configured as an operator would ------------
    my $conf = slurp($MAILER_CONF);
    $conf =~ s/^SMTP_URL=.*$/SMTP_URL=smtp:\/\/127.0.0.1:$smtp_port/m;
    $conf =~ s/^MAIL_FROM=.*$/MAIL_FROM=$FROM/m;
    $conf =~ s/^STARTTLS=.*$/STARTTLS=off/m;
    spew($MAILER_CONF, $conf);
    $started{mailer} = 1;
    if ($systemd) {
        must(run('systemctl', 'start', 'hydra-signup-mailer') == 0,
            'systemctl start hydra-signup-mailer', capture('systemctl', 'status', 'hydra-signup-mailer'));
    } else {
        # as the unit runs it: User/Group _hydra-mailer, UMask 0007
        $mailer_pid = fork() // die "fork: $!";
        if ($mailer_pid == 0) {
            umask 0007;
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$work/mailer.log" or die;
            open STDERR, '>&', \*STDOUT or die;
            exec 'setpriv', "--reuid=$USER", "--regid=$USER", '--init-groups',
                '/usr/libexec/hydra-signup/mailer-start' or die "exec: $!";
        }
        sleep 0.5;
        must(waitpid($mailer_pid, WNOHANG) == 0, 'the sender runs (mailer-start as _hydra-mailer)',
            tail_of("$work/mailer.log", 10));
    }

    # ---- the module in the system Apache --------------------------------
    my $http_port;
    $http_port = free_port() until $http_port && $http_port != $smtp_port && $http_port != $pg_port;
    $started{a2enmod} = 1;
    my $en = capture('a2enmod', 'hydra_signup');
    must($? == 0, 'a2enmod hydra_signup', $en);
    my @mods = split /\n/, capture('a2query', '-m');
    for my $m (qw(hydra_signup dbd)) {
        ok((grep { /^\Q$m\E / } @mods), "module $m enabled");
    }
    spew($SITE_FILE, <<"CONF");
# written by tests/package/package.t; removed when it ends
Listen 127.0.0.1:$http_port
<VirtualHost 127.0.0.1:$http_port>
    ServerName 127.0.0.1
    ErrorLog $work/apache-error.log
    CustomLog $work/apache-access.log combined

    DBDriver pgsql
    DBDParams "$dsn connect_timeout=5"
    DBDPersist On
    DBDMin 0
    DBDKeep 4
    DBDMax 25

    HydraSignupJWTAlgorithm HS256
    HydraSignupJWTKeyFile $work/keys/jwt-hs256.key
    HydraSignupCodeSecretFile $work/keys/code.secret
    HydraSignupSpoolDir $SPOOL
    HydraSignupMailFrom "Package Test Hosting <noreply\@pkgtest.example.net>"

    <Location /v1/public/signup>
        SetHandler hydra-signup
        HydraSignupTenants *
    </Location>
</VirtualHost>
CONF
    $started{site} = 1;
    must(run('a2ensite', $SITE) == 0, "a2ensite $SITE", tail_of($log, 5));
    my $ct = capture('sh', '-c', 'apache2ctl configtest 2>&1');
    must($? == 0 && $ct =~ /Syntax OK/, 'apache2ctl configtest', $ct);
    $started{apache} = 1;
    must(run('apache2ctl', 'start') == 0, 'apache2ctl start', tail_of($log, 10),
        tail_of('/var/log/apache2/error.log', 10));

    my $ua = HTTP::Tiny->new(timeout => 30);
    my $base = "http://127.0.0.1:$http_port/v1/public/signup";
    my $res = wait_for(30, sub {
        my $x = $ua->get("$base/plans/$TENANT");
        return $x->{status} == 599 ? undef : $x;
    });
    must($res && $res->{status} == 200, "GET plans/$TENANT: 200 (HydraSignupTenants *)",
        $res ? "$res->{status} $res->{content}" : 'no answer',
        tail_of("$work/apache-error.log", 20), tail_of('/var/log/apache2/error.log', 20));
    my $plans = eval { $json->decode($res->{content}) };
    ok(ref $plans && $res->{content} =~ /"starter"/, 'the tenant inserted into the database is served')
        or diag($res->{content});

    # ---- a signup, its mail through the packaged sender, the verify -------
    my $email = 'owner@pkgtest-customer.example.com';
    $res = $ua->post($base, { headers => { 'Content-Type' => 'application/json' },
        content => $json->encode({ company_name => 'Package Test Customer', email => $email,
            tenant_slug => $TENANT }) });
    must($res->{status} == 201, 'POST signup: 201', "$res->{status} $res->{content}",
        tail_of("$work/apache-error.log", 20));
    my $signup = eval { $json->decode($res->{content}) } // {};

    my $file = wait_for(60, sub { (glob "$work/mail/*.eml")[0] });
    must($file, 'the packaged sender delivered the mail to the SMTP sink',
        $systemd ? capture('journalctl', '-u', 'hydra-signup-mailer', '-n', '20', '--no-pager')
                 : tail_of("$work/mailer.log", 20),
        capture('ls', '-lR', $SPOOL));
    my $raw = slurp($file) // '';
    my @codes = $raw =~ /^(\d{6})\r?$/mg;
    is(scalar @codes, 1, 'one code in the mail, on a line of its own');
    like($raw, qr/^To: .*\Q$email\E/mi, 'addressed to the customer');
    my $env = slurp("$work/envelope.log") // '';
    like($env, qr/"mail_from": "\Q$FROM\E"/, "envelope sender from mailer.conf's MAIL_FROM ($FROM)")
        or diag($env);
    # the module wrote the message 0660 into the setgid spool: the sender
    # (group _hydra-mailer) could touch, claim and remove it without a warning
    my $mlog = $systemd
        ? capture('journalctl', '-u', 'hydra-signup-mailer', '--no-pager', '-o', 'cat')
        : wait_for(10, sub { my $l = slurp("$work/mailer.log") // ''; $l =~ / delivered / ? $l : undef })
          // slurp("$work/mailer.log") // '';
    ok($mlog =~ / INFO delivered / && $mlog !~ / (?:WARN|ERROR) /,
        "the sender's log: delivered, no warning or error") or diag($mlog);
    my $left = wait_for(15, sub { my @f = glob "$SPOOL/new/* $SPOOL/cur/*"; @f ? undef : 1 });
    ok($left, 'the spool is drained') or diag(capture('ls', '-lR', $SPOOL));
    my @dead = glob "$SPOOL/dead/*";
    ok(!@dead, 'no dead letters') or diag(join "\n", map { slurp($_) // $_ } @dead);

    $res = $ua->post("$base/verify", { headers => { 'Content-Type' => 'application/json' },
        content => $json->encode({ code => $codes[0] // '000000', email => $email,
            tenant_slug => $TENANT }) });
    is($res->{status}, 200, 'POST verify with the mailed code: 200') or diag($res->{content});
    my $tok = eval { $json->decode($res->{content}) } // {};
    my $secret = slurp("$work/keys/jwt-hs256.key") // '';
    $secret =~ s/\r?\n\z//;
    my $claims = eval {
        require Crypt::JWT;
        Crypt::JWT::decode_jwt(token => $tok->{access_token} // '', key => $secret,
            accepted_alg => 'HS256', verify_exp => 1, verify_iss => 'hydracore',
            verify_aud => 'hydracore-portal');
    };
    ok($claims && defined $signup->{customer_id} && $claims->{sub} eq $signup->{customer_id},
        'the access token verifies (HS256) and names the customer') or diag($@ || $res->{content});
    return 1;
}

# Undoes whatever body() did, in reverse, each step on its own.
sub cleanup {
    if ($started{mailer}) {
        if ($systemd) {
            run('systemctl', 'stop', 'hydra-signup-mailer');
        } elsif ($mailer_pid) {
            kill 'TERM', $mailer_pid;
            my $gone = wait_for(30, sub { waitpid($mailer_pid, WNOHANG) != 0 });
            unless ($gone) { kill 'KILL', $mailer_pid; waitpid $mailer_pid, 0 }
        }
    }
    if ($started{apache} && system_apache_pid()) {
        run('apache2ctl', 'stop');
        wait_for(30, sub { !system_apache_pid() })
            or diag('the system apache2 did not stop');
    }
    if ($started{site}) {
        run('a2dissite', '-q', $SITE) if -l "/etc/apache2/sites-enabled/$SITE.conf";
        unlink $SITE_FILE;
    }
    if ($started{packages}) {
        my @inst = grep { capture('dpkg-query', '-W', '-f=${Status}', $_) =~ /installed|config-files|unpacked|half/ } @PKGS;
        run({ log => "$work/apt.log" }, 'apt-get', '-o', 'DPkg::Lock::Timeout=600', 'purge', '-y', @inst) if @inst;
        # the user stays after a purge (Debian's practice); the test removes it
        if ($before->{"passwd $USER"} eq '' && getpwnam($USER)) {
            run('deluser', '--quiet', '--system', $USER);
        }
        if ($before->{"group $USER"} eq '' && getgrnam($USER)) {
            run('delgroup', '--quiet', '--system', $USER);
        }
    }
    if ($started{a2enmod}) {
        # the purge disabled hydra_signup (checked by the snapshot); a2enmod
        # also enabled what the .load file depends on: disable what was not
        # enabled before
        my %was = map { /^(\S+) / ? ($1 => 1) : () } split /\n/, $before->{'a2query -m'};
        for my $m (qw(dbd)) {
            run('a2dismod', '-q', '-f', $m) if !$was{$m} && -e "/etc/apache2/mods-enabled/$m.load";
        }
        # only if the purge failed to
        if (-e '/etc/apache2/mods-enabled/hydra_signup.load') {
            diag('the purge left hydra_signup enabled');
            run('a2dismod', '-q', '-f', 'hydra_signup');
        }
    }
    # a2dismod leaves "disabled_by_admin" markers: remove those it added
    for my $root ('/var/lib/apache2') {
        my @new;
        File::Find::finddepth({ no_chdir => 1, wanted => sub {
            push @new, $File::Find::name unless exists $before->{$File::Find::name};
        } }, $root) if -d $root;
        for my $p (@new) { -d $p && !-l $p ? rmdir $p : unlink $p }
    }
    if ($started{pg}) {
        run('bash', '-c', ". '$SRC/scripts/lib/pg.sh'; hs_pg_stop '$pg_data'");
    }
    if ($sink_pid) {
        kill 'TERM', $sink_pid;
        my $gone = wait_for(15, sub { waitpid($sink_pid, WNOHANG) != 0 });
        unless ($gone) { kill 'KILL', $sink_pid; waitpid $sink_pid, 0 }
    }
    if ($was_running && !system_apache_pid()) {
        run('apache2ctl', 'start');
        wait_for(30, sub { system_apache_pid() }) or diag('the system apache2 did not start again');
    }
}
