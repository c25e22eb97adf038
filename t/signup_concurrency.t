# SPDX-License-Identifier: Apache-2.0
# Parallel signups: a node never takes more than its capacity, with one
# httpd and with two httpd instances sharing the database; parallel
# signups with one company name get distinct site labels.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use LWP::UserAgent ();
use POSIX ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HydraTest qw(start_httpd stop_httpd dbh reset_db add_tenant json_bytes spool_files wait_port
                 free_port);

plan tests => 34, have_lwp;

my $db = dbh();
reset_db();
Apache::TestRequest::module('vhost_signup');
my $port1 = (split /:/, Apache::TestRequest::hostport())[1];
my $dir = tempdir(CLEANUP => 1);

sub nfiles { my @f = spool_files($_[0]); return scalar @f }
sub clear_spool { unlink spool_files($_) for qw(new tmp cur) }

# Forks one client per body, all released at once; returns
# [[status, decoded body], ...] in the order given. Bounded: 60 s.
sub parallel {
    my (@jobs) = @_; # [port, body hash]
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my %kids;
    for my $i (0 .. $#jobs) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            my $status = 0;
            my $content = '';
            eval {
                my $ua = LWP::UserAgent->new(timeout => 30, keep_alive => 0);
                my $url = "http://127.0.0.1:$jobs[$i][0]/v1/public/signup";
                my $body = json_bytes()->encode($jobs[$i][1]);
                sysread $go_r, my $x, 1; # blocks until the parent closes
                my $res = $ua->post($url, 'Content-Type' => 'application/json',
                                    Content => $body);
                $status = $res->code;
                $content = $res->content;
            };
            if (open my $fh, '>', "$dir/res.$i") {
                print $fh "$status\n$content";
                close $fh;
            }
            POSIX::_exit(0);
        }
        $kids{$pid} = 1;
    }
    close $go_r;
    sleep 0.3; # every child is waiting on the pipe
    close $go_w;
    my $until = time + 60;
    while (%kids && time < $until) {
        my $pid = waitpid(-1, POSIX::WNOHANG());
        if ($pid > 0) { delete $kids{$pid}; next }
        sleep 0.05;
    }
    kill 'KILL', keys %kids;
    waitpid($_, 0) for keys %kids;
    my @out;
    for my $i (0 .. $#jobs) {
        my ($st, $body) = (0, '');
        if (open my $fh, '<', "$dir/res.$i") {
            local $/;
            my $all = <$fh>;
            ($st, $body) = split /\n/, $all, 2;
            close $fh;
        }
        unlink "$dir/res.$i";
        push @out, [$st, eval { json_bytes()->decode($body // '') } // {}];
    }
    return @out;
}

sub tally {
    my %n;
    $n{ $_->[0] }++ for @_;
    return join ' ', map { "$_:$n{$_}" } sort keys %n;
}

sub tenant_state {
    my ($slug) = @_;
    my ($used) = $db->selectrow_array(
        "SELECT sum(used) FROM nodes n JOIN tenants t ON t.id = n.tenant_id
         WHERE t.slug = ?", undef, $slug);
    my ($cust) = $db->selectrow_array(
        "SELECT count(*) FROM customers c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = ?", undef, $slug);
    my ($codes) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_codes k JOIN customers c
         ON c.id = k.customer_id JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = ?", undef, $slug);
    my ($placed) = $db->selectrow_array(
        "SELECT count(*) FROM customers c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.slug = ? AND c.node_id IS NOT NULL", undef, $slug);
    return ($used, $cust, $codes, $placed);
}

# $n signups at once to tenant $slug, the i-th to $ports[i % @ports] with
# the company name and address $who->(i) returns.
sub rush {
    my ($slug, $n, $who, @ports) = @_;
    return parallel(map {
        my ($company, $email) = $who->($_);
        [$ports[$_ % @ports], { company_name => $company, email => $email,
                                tenant_slug => $slug }]
    } 0 .. $n - 1);
}

sub capacity_run {
    my ($slug, @ports) = @_;
    add_tenant(slug => $slug, nodes => [[10, 0]]);
    clear_spool();
    my @r = rush($slug, 40, sub { ("Rush $_[0]", "rush$_[0]\@$slug.example") },
                 @ports);
    my $label = @ports > 1 ? 'two httpd' : 'one httpd';
    ok t_cmp(tally(@r), '201:10 503:30', "$label: ten 201 and thirty 503");
    ok t_cmp(scalar(grep { $_->[0] == 503
        && ($_->[1]{detail} // '') eq 'No shared hosting capacity available' } @r),
        30, "$label: the 503s say why");
    my ($used, $cust, $codes, $placed) = tenant_state($slug);
    ok t_cmp($used, 10, "$label: used = 10");
    ok t_cmp($cust, 10, "$label: ten customers");
    ok t_cmp($placed, 10, "$label: each on the node");
    ok t_cmp($codes, 10, "$label: ten codes");
    ok t_cmp(nfiles('new'), 10, "$label: ten messages in new/");
    ok t_cmp(nfiles('tmp'), 0, "$label: nothing left in tmp/");
    my %ids = map { ($_->[1]{customer_id} // '') => 1 } grep { $_->[0] == 201 } @r;
    my ($match) = $db->selectrow_array(
        "SELECT count(*) FROM customers WHERE id::text = ANY (?)", undef,
        [keys %ids]);
    ok t_cmp($match, 10, "$label: the answered ids are the rows");
}

# ---- one httpd ---------------------------------------------------------
capacity_run('rush', $port1);

# ---- a second httpd instance, same module, database, keys and spool -----
my $port2 = free_port();
my ($up, $out) = start_httpd(dir => $dir, port => $port2, log_level => 'info',
    mpm => "ThreadsPerChild 25\nMaxRequestWorkers 50", dbd_exptime => 30);
ok $up or print "# second httpd did not start: $out\n";
sub stop_second { stop_httpd($dir) }
END { stop_second() }

if ($up) {
    capacity_run('rush2', $port1, $port2);
}
else {
    ok 0 for 1 .. 9;
}

# ---- twenty parallel signups, one company name --------------------------
add_tenant(slug => 'samey', domain => 'samey.test', nodes => [[100, 0]]);
clear_spool();
my @ports = $up ? ($port1, $port2) : ($port1);
my @r = rush('samey', 20, sub { ('Same Name Inc', "same$_[0]\@example.com") },
             @ports);
ok t_cmp(tally(@r), '201:20', 'twenty 201');
my %urls = map { ($_->[1]{site_url} // '') => 1 } @r;
ok t_cmp(scalar keys %urls, 20, 'twenty distinct site_urls');
ok t_cmp(join(',', sort keys %urls),
         join(',', sort map { 'https://same-name-inc' . ($_ > 1 ? "-$_" : '') . '.samey.test' } 1 .. 20),
         'same-name-inc, -2 ... -20');
my $rows = $db->selectcol_arrayref(
    "SELECT DISTINCT c.site_url FROM customers c JOIN tenants t ON t.id = c.tenant_id
     WHERE t.slug = 'samey'");
ok t_cmp(scalar @$rows, 20, 'twenty distinct labels stored');
my ($used, $cust, $codes) = tenant_state('samey');
ok t_cmp("$used $cust $codes", '20 20 20', 'used, customers and codes agree');
ok t_cmp(nfiles('new'), 20, 'twenty messages');

# ---- twenty parallel signups of one address ----------------------------
add_tenant(slug => 'oneaddr', nodes => [[100, 0]]);
clear_spool();
@r = rush('oneaddr', 20, sub { ("One $_[0]", 'Only@One.example') }, @ports);
ok t_cmp(tally(@r), '201:1 429:19', 'one address: one 201, the rest 429');
($used, $cust, $codes) = tenant_state('oneaddr');
ok t_cmp("$used $cust $codes", '1 1 1', 'one customer, one slot, one code');
ok t_cmp(nfiles('new'), 1, 'one message');

# ---- a full node of expired pending signups, reclaimed under load -------
add_tenant(slug => 'stale', nodes => [[10, 0]]);
my ($stale_node) = $db->selectrow_array(
    "SELECT n.id FROM nodes n JOIN tenants t ON t.id = n.tenant_id WHERE t.slug = 'stale'");
@r = rush('stale', 10, sub { ("Old $_[0]", "old$_[0]\@stale.example") }, $port1);
ok t_cmp(tally(@r), '201:10', 'ten signups fill the node');
# four days old: past the default 72 h of both instances
$db->do("UPDATE customers SET created_at = now() - interval '4 days'
         WHERE node_id = ?", undef, $stale_node);
$db->do("UPDATE hydra_signup_codes SET sent_at = now() - interval '4 days'
         WHERE customer_id IN (SELECT id FROM customers WHERE node_id = ?)",
        undef, $stale_node);
clear_spool();
@r = rush('stale', 20, sub { ("New $_[0]", "new$_[0]\@stale.example") }, @ports);
ok t_cmp(tally(@r), '201:10 503:10', 'twenty against ten reclaimable slots');
($used, $cust, $codes) = tenant_state('stale');
ok t_cmp("$used $cust $codes", '10 10 10', 'used, customers, codes: 10');
my ($old_left) = $db->selectrow_array(
    "SELECT count(*) FROM customers WHERE email LIKE 'old%\@stale.example'");
ok t_cmp($old_left, 0, 'every expired signup is gone');
ok t_cmp(nfiles('new'), 10, 'ten messages');

# the second instance kept a clean log
stop_second();
my $log2 = '';
if (open my $f, '<', "$dir/error.log") { local $/; $log2 = <$f> // ''; close $f }
ok t_cmp(join("\n", $log2 =~ /^.*(?:exit signal|Segmentation|\[(?:emerg|alert|crit)\]).*$/mg),
         '', 'second httpd: no crash, nothing critical');
