# SPDX-License-Identifier: Apache-2.0
# HydraSignupRateLimitCache memcache:HOST:PORT: two httpd "hosts" (two
# instances with the same ServerName, as behind a load balancer) count one
# client's signups in one memcached, so the limit holds across hosts; a
# host with its own shmcb cache counts alone.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use LWP::UserAgent ();
use POSIX ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HydraTest qw(reset_db add_tenant json free_port wait_port);

my $memcached = '/usr/bin/memcached';
plan tests => 6, sub { have_lwp() && -x $memcached };

my $mods = $ENV{HYDRA_HTTPD_MODULES};
my $st = $ENV{HYDRA_STATE};
my $httpd = Apache::Test::config()->{vars}{httpd};
my $dir = tempdir(CLEANUP => 1);
my (@pids, @confs);


reset_db();
add_tenant(slug => 'acme', nodes => [[100, 0]]);

my $mport = free_port();
my $mpid = fork // die;
if (!$mpid) {
    exec($memcached, '-l', '127.0.0.1', '-p', $mport, '-U', '0', '-m', '16')
        or POSIX::_exit(127);
}
ok wait_port($mport, 10);    # memcached is up

# one instance: its own directory, port and rate-limit cache
sub start_httpd {
    my ($name, $cache) = @_;
    my $d = "$dir/$name";
    mkdir $d;
    mkdir "$d/logs";
    my $port = free_port();
    my $load = $cache =~ /^memcache/
        ? "LoadModule socache_memcache_module $mods/mod_socache_memcache.so"
        : "LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so";
    open my $c, '>', "$d/httpd.conf" or die;
    print $c <<"EOT";
ServerRoot $d
ServerName signup.test:8443
Listen 127.0.0.1:$port
PidFile $d/httpd.pid
ErrorLog $d/error.log
DefaultRuntimeDir $d/logs
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule dbd_module $mods/mod_dbd.so
$load
LoadModule hydra_signup_module $ENV{HYDRA_MODULE}
DBDriver pgsql
DBDParams "$ENV{HYDRA_DBD_PARAMS}"
HydraSignupJWTKeyFile $st/jwt-hs256.key
HydraSignupCodeSecretFile $st/code.secret
HydraSignupSpoolDir $st/spool
HydraSignupMailFrom "Acme <noreply\@example.net>"
HydraSignupRateLimitCache $cache
HydraSignupRateLimit signup 4 60
<Location /v1/public/signup>
    SetHandler hydra-signup
    HydraSignupTenants acme
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
ok $ha && $hb && $hc;    # three instances up

my $ua = LWP::UserAgent->new(timeout => 20);
my $n = 0;
sub signup {
    my ($port) = @_;
    $n++;
    return $ua->post("http://127.0.0.1:$port/v1/public/signup",
        'Content-Type' => 'application/json',
        Content => json()->encode({ company_name => "Host $n",
            email => "host$n\@example.com", tenant_slug => 'acme' }))->code;
}

# six signups from one client, alternating between the two hosts
my @codes = map { signup($_ % 2 ? $ha : $hb) } 1 .. 6;
ok t_cmp(join(',', @codes), '201,201,201,201,429,429',
         'the limit (4) holds across both hosts');
ok t_cmp(signup($ha) . ',' . signup($hb), '429,429', 'both still refuse');
# a host with its own shmcb cache has its own counter
ok t_cmp(signup($hc), 201, 'a host with another cache counts alone');
my @log = grep { /HS0060[1-7]/ } map { `cat $dir/$_/error.log 2>/dev/null` } qw(a b);
ok t_cmp(scalar @log, 0, 'no cache errors logged');
