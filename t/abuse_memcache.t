# SPDX-License-Identifier: Apache-2.0
# HydraSignupRateLimitCache (issue 11 "rate limits without one lock",
# issue 12 finding 13): two httpd "hosts" (two instances with the same
# ServerName, as behind a load balancer) count in one memcached with its
# atomic incr, exactly, also under 200 parallel requests split across
# both; the attempt counters of verify count across both; what memcached
# stores is a plain decimal number (read back over its text protocol: no
# binary entry, no padding bytes); a host with its own shmcb table counts
# exactly alone under 200 parallel requests; a memcached that accepts and
# never answers, or one that is stopped, lets requests through (fail open,
# HS01405) and refuses verify attempts (fail closed, 503, HS01406), each
# answer within a bound (the store's timeout is 200 ms; the bound checked
# is 10 s: "does not hang", not a speed).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use LWP::UserAgent ();
use POSIX ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HydraTest qw(reset_db add_tenant json free_port wait_port check
                 start_clients wait_clients tally wait_until);

my $memcached = '/usr/bin/memcached';
plan tests => 26, sub { have_lwp() && -x $memcached };

my $mods = $ENV{HYDRA_HTTPD_MODULES};
my $st = $ENV{HYDRA_STATE};
my $httpd = Apache::Test::config()->{vars}{httpd};
my $dir = tempdir(CLEANUP => 1);
my (@pids, @confs);
my $t_start = time;

reset_db();
add_tenant(slug => 'acme', nodes => [[100, 0]]);

my $mport = free_port();
my $mpid = fork // die;
if (!$mpid) {
    exec($memcached, '-l', '127.0.0.1', '-p', $mport, '-U', '0', '-m', '16')
        or POSIX::_exit(127);
}
ok wait_port($mport, 10);    # memcached is up

# a "memcached" that accepts connections (the kernel does, into the
# backlog) and never answers
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 128, ReuseAddr => 1) or die $!;
my $hport = $hole->sockport;

# one instance: its own directory, port and counter store; mod_remoteip
# so that each part of this test is its own client (X-Forwarded-For)
sub start_httpd {
    my ($name, $cache) = @_;
    my $d = "$dir/$name";
    mkdir $d;
    mkdir "$d/logs";
    my $port = free_port();
    open my $c, '>', "$d/httpd.conf" or die;
    print $c <<"EOT";
ServerRoot $d
ServerName signup.test:8443
Listen 127.0.0.1:$port
PidFile $d/httpd.pid
ErrorLog $d/error.log
LogLevel warn
DefaultRuntimeDir $d/logs
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule remoteip_module $mods/mod_remoteip.so
LoadModule dbd_module $mods/mod_dbd.so
LoadModule hydra_signup_module $ENV{HYDRA_MODULE}
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
DBDriver pgsql
DBDParams "$ENV{HYDRA_DBD_PARAMS}"
HydraSignupJWTKeyFile $st/jwt-hs256.key
HydraSignupCodeSecretFile $st/code.secret
HydraSignupSpoolDir $st/spool
HydraSignupMailFrom "Acme <noreply\@example.net>"
HydraSignupRateLimitCache $cache
HydraSignupRateLimit signup 4 60
HydraSignupRateLimit verify 50 60
<Location /v1/public/signup>
    SetHandler hydra-signup
    HydraSignupTenants acme
    HydraSignupMetrics On
</Location>
EOT
    close $c;
    my $out = `$httpd -f $d/httpd.conf -k start 2>&1`;
    push @confs, "$d/httpd.conf";
    print STDERR "# $name did not start: $out\n" unless $? == 0;
    return wait_port($port, 15) ? $port : 0;
}
END {
    system("$httpd -f $_ -k stop >/dev/null 2>&1") for @confs;
    if ($mpid) { kill 'TERM', $mpid; waitpid $mpid, 0 }
}

my $ha = start_httpd('a', "memcache:127.0.0.1:$mport");
my $hb = start_httpd('b', "memcache:127.0.0.1:$mport");
my $hc = start_httpd('c', 'shmcb');
my $hd = start_httpd('d', "memcache:127.0.0.1:$hport");
ok $ha && $hb && $hc && $hd;    # four instances up

my $ua = LWP::UserAgent->new(timeout => 20, keep_alive => 0);
my $n = 0;
sub signup {
    my ($port, @h) = @_;
    $n++;
    return $ua->post("http://127.0.0.1:$port/v1/public/signup",
        'Content-Type' => 'application/json', @h,
        Content => json()->encode({ company_name => "Host $n",
            email => "host$n\@example.com", tenant_slug => 'acme' }))->code;
}
# a wrong code for an address nobody signed up with; (status, seconds)
sub guess {
    my ($port, $ip) = @_;
    my $t0 = time;
    my $res = $ua->post("http://127.0.0.1:$port/v1/public/signup/verify",
        'Content-Type' => 'application/json', 'X-Forwarded-For' => $ip,
        Content => json()->encode({ email => 'nobody@example.com',
            code => '000000', tenant_slug => 'acme' }));
    return ($res, time - $t0);
}
# an empty body: the limit is counted, then 422 (no database work)
sub empty {
    my ($port, $kind, $ip) = @_;
    my $t0 = time;
    my $path = $kind eq 'verify' ? '/verify' : '';
    my $res = $ua->post("http://127.0.0.1:$port/v1/public/signup$path",
        'Content-Type' => 'application/json', 'X-Forwarded-For' => $ip,
        Content => '{}');
    return ($res->code, time - $t0);
}
# hydra_signup_ratelimit_store_errors_total of one instance
sub store_errors {
    my $res = $ua->get("http://127.0.0.1:$_[0]/v1/public/signup/metrics");
    return $res->decoded_content =~ /^hydra_signup_ratelimit_store_errors_total (\d+)$/m
        ? $1 : "none ($res->{_rc})";
}
sub log_of { my $f = "$dir/$_[0]/error.log"; return -e $f ? `cat $f` : '' }

# ---- signups from one client, alternating between the two hosts ---------
my @codes = map { signup($_ % 2 ? $ha : $hb) } 1 .. 6;
ok t_cmp(join(',', @codes), '201,201,201,201,429,429',
         'the limit (4) holds across both hosts');
ok t_cmp(signup($ha) . ',' . signup($hb), '429,429', 'both still refuse');
# a host with its own shmcb table has its own counter
ok t_cmp(signup($hc), 201, 'a host with another store counts alone');

# ---- 200 parallel requests from one client, split across both hosts -----
# verify limit 50: exactly 50 admitted (422: the empty body), whichever
# host and child counted them
sub flood {
    my ($ip, @ports) = @_;
    my $per = 20 / @ports;
    my @h = map {
        start_clients(clients => $per, max => 10, together => 1,
            url => "http://127.0.0.1:$_/v1/public/signup/verify",
            body => sub { {} }, headers => sub { ('X-Forwarded-For' => $ip) },
            timeout => 20)
    } @ports;
    my (@ans, $hung);
    for my $h (@h) {
        push @ans, wait_clients($h, 60);
        $hung += $h->{hung};
    }
    return (tally(map { $_->{status} } @ans), $hung);
}
my ($tally, $hung) = flood('198.51.100.7', $ha, $hb);
ok t_cmp($tally, '422:50 429:150', 'two hosts, one memcached: exactly 50 of 200 admitted');
ok t_cmp($hung, 0, 'no client hung');

# ---- the same within one host, in its shared-memory table -----------------
($tally, $hung) = flood('198.51.100.8', $hc);
ok t_cmp($tally, '422:50 429:150', 'shmcb: exactly 50 of 200 parallel requests admitted');
ok t_cmp($hung, 0, 'no client hung');

# ---- verify attempt counters across both hosts ----------------------------
# an unknown address: 400 x MaxAttempts (5), then 429, wherever it lands
my @seq = map { (guess($_ % 2 ? $ha : $hb, '198.51.100.9'))[0]->code } 1 .. 7;
ok t_cmp("@seq", '400 400 400 400 400 429 429',
         'attempt counters count across both hosts');

# ---- what memcached holds: decimal numbers, nothing else ------------------
# every key of ours (lru_crawler metadump lists them), then each value's
# raw bytes with get: (window start in seconds << 32) + count
sub mc_raw {
    my %v;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$mport", Timeout => 5)
        or return \%v;
    local $SIG{ALRM} = sub { die "memcached did not answer\n" };
    alarm 20;
    eval {
        # metadump's lines end in LF, END in CRLF
        print $s "lru_crawler metadump all\r\n";
        my @keys;
        while (my $l = <$s>) {
            last if $l =~ /^(END|ERROR|CLIENT_ERROR|BUSY)/;
            if ($l =~ /^key=(\S+)/) {
                (my $k = $1) =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
                push @keys, $k;    # every key: nothing else may be there
            }
        }
        for my $k (@keys) {
            print $s "get $k\r\n";
            my $h = <$s> // '';
            next unless $h =~ /^VALUE \S+ \d+ (\d+)\r\n\z/;
            read($s, my $data, $1 + 2);
            <$s>;    # END
            $v{$k} = substr($data, 0, -2);
        }
    };
    alarm 0;
    print STDERR "# $@" if $@;
    return \%v;
}
my $raw = mc_raw();
my @bad = grep { $raw->{$_} !~ /\A[0-9]{1,20}\z/ || !/^hsrl1:/ } sort keys %$raw;
ok t_cmp(join(' ', map { "$_=" . unpack('H*', $raw->{$_}) } @bad), '',
         'every stored entry is ours and a decimal number (no binary entry, no padding)');
sub count_of { my $v = $raw->{$_[0]} // return -1; return $v % 2**32 }
sub start_of { my $v = $raw->{$_[0]} // return -1; return int($v / 2**32) }
my $skey = 'hsrl1:s|signup.test:8443|4/60|127.0.0.1';
ok t_cmp(count_of($skey) . ' ' . count_of('hsrl1:v|signup.test:8443|50/60|198.51.100.7'),
         '8 200', 'the stored counts are the requests made (8 signups, 200 verifies)');
check(start_of($skey) >= int($t_start) - 1 && start_of($skey) <= time + 1,
      'the stored window start (' . start_of($skey) . ') is this run\'s');
my @attempts = sort map { count_of($_) } grep { !/^hsrl1:[svp]\|/ } keys %$raw;
ok t_cmp("@attempts", '7 7', 'two attempt counters (per code, per day), 7 each');
my @log = grep { /HS01(40[1-9]|41\d)/ } map { log_of($_) } qw(a b c);
ok t_cmp(scalar @log, 0, 'no store errors logged');
ok t_cmp(store_errors($ha) . ' ' . store_errors($hb), '0 0', 'no store errors counted');

# ---- a memcached that never answers: fail open, fail closed --------------
# signup limit 4: six empty signups all reach the body check (422)
my @r = map { [empty($hd, 'signup', '198.51.100.10')] } 1 .. 6;
ok t_cmp(join(' ', map { $_->[0] } @r), '422 422 422 422 422 422',
         'memcached silent: request limits let requests through');
ok t_cmp(scalar(grep { $_->[1] > 10 } @r), 0, 'each answered within 10 s');
check(wait_until(sub { log_of('d') =~ /HS01405/ }, 10), 'HS01405 logged');
ok t_cmp(store_errors($hd), 6, 'each request let through is counted in the metric');
my ($res, $secs) = guess($hd, '198.51.100.11');
ok t_cmp($res->code . ' ' . ($res->header('Retry-After') // '-'), '503 5',
         'memcached silent: a verify attempt is refused (503, Retry-After)');
check($secs < 10 && wait_until(sub { log_of('d') =~ /HS01406/ }, 10),
      sprintf('answered in %.1f s; HS01406 logged', $secs));

# ---- memcached stopped ------------------------------------------------------
kill 'TERM', $mpid;
waitpid $mpid, 0;
$mpid = 0;
# 127.0.0.1 is over its signup limit on both hosts: now let through
my @down = map { [empty($_, 'signup', '127.0.0.1')] } $ha, $hb, $ha;
ok t_cmp(join(' ', map { $_->[0] } @down), '422 422 422',
         'memcached stopped: request limits let requests through');
($res, $secs) = guess($ha, '198.51.100.12');
ok t_cmp($res->code, 503, 'memcached stopped: a verify attempt is refused');
ok t_cmp(scalar(grep { $_->[1] > 10 } @down, [0, $secs]), 0,
         'each answered within 10 s');
check(wait_until(sub { log_of('a') =~ /HS01405/ && log_of('a') =~ /HS01406/ }, 10),
      'HS01405 and HS01406 logged');
