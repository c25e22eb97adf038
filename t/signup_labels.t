# SPDX-License-Identifier: Apache-2.0
# Site labels when many customers share a company name: the plain label
# first, then the next number of the name's counter in
# hydra_signup_labels (one indexed upsert, sql/006_labels.sql), never a
# scan of the tenant's customers and never "no label":
#  1. the plain label first, while it is free;
#  2. the counter: -2, -3, ...; the migration's back-fill starts it one
#     past the highest number in use;
#  3. a hand-made row holding the next number: the signup takes the one
#     after it, and the counter moves past it for good;
#  4. 260 signups of one name long enough to be cut (79 characters): all
#     201, distinct, each the expected label, the 201st and later too; the
#     counter is keyed by the name's first 53 characters, which the cut
#     labels keep (back-fill, a second name agreeing on them);
#  5. a concealed answer's label is taken as a pending signup's is;
#  6. the statements: the counter's touches no customer row, the label
#     probe is an index scan.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Time::HiRes ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json);

plan tests => 26, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'acme', nodes => [[1000, 0]]);
my $db = dbh();
my $ins = $db->prepare(
    "INSERT INTO customers (id, tenant_id, company_name, email, plan, site_url,
     status) VALUES (gen_random_uuid(), ?, ?, ?, 'starter', ?, 'active')");
my $h = 0;
# a customer row made by hand (the platform), not by a signup
sub taken {
    my ($label, $email) = @_;
    $ins->execute($tenant, 'By Hand', $email // 'hand' . ++$h . '@example.com',
                  "https://$label.acme.example.net");
}

my $n = 0;
sub signup {
    my ($company, $email) = @_;
    $n++;
    my $res = post_json('/v1/public/signup',
        { company_name => $company // 'Acme Corp',
          email => $email // "new$n\@example.com", tenant_slug => 'acme' });
    return $res->code == 201 ? get_json($res)->{site_url} : 'HTTP ' . $res->code;
}
sub url { "https://$_[0].acme.example.net" }
sub counter {
    my ($base) = @_;
    my ($v) = $db->selectrow_array(
        "SELECT n FROM hydra_signup_labels WHERE tenant_id = ? AND base = ?",
        undef, $tenant, $base);
    return $v // 'none';
}

# ---- 1, 2: plain first, then the counter ---------------------------------
taken('acme-corp-7');
ok t_cmp(signup(), url('acme-corp'), 'plain label first');
ok t_cmp(signup(), url('acme-corp-2'),
         'the plain one taken: the counter starts at -2');
ok t_cmp(signup(), url('acme-corp-3'), 'then -3');
ok t_cmp(counter('acme-corp'), 3, 'the counter holds the last number given');

# the migration back-fills the counters from the labels in use: applied to
# this data (hand-made -7 and -300, a numbered decoy, another name's label
# with the same start, a label only looking numbered), the next is -301
taken('acme-corp-300');
taken('acme-corp-12x');
taken('acme-corporation-900');
$db->do("INSERT INTO hydra_signup_decoys (tenant_id, email_lower, site_url)
         VALUES (?, 'decoy\@example.com', ?)", undef, $tenant,
        url('zeta-41'));
# the migration once more, on the data as it is now
sub migrate_again {
    open my $fh, '<', 'sql/006_labels.sql' or die "sql/006_labels.sql: $!";
    my $sql = do { local $/; <$fh> };
    $db->begin_work;
    $db->do('DROP TABLE hydra_signup_labels');
    $db->do($sql);
    $db->commit;
}
migrate_again();
ok t_cmp(counter('acme-corp'), 300, 'back-fill: the highest number in use');
ok t_cmp(counter('zeta'), 41, 'back-fill: decoys count');
ok t_cmp(counter('acme-corporation'), 900, 'back-fill: per base');
ok t_cmp(signup(), url('acme-corp-301'), 'after the back-fill: -301');

# ---- 3. a hand-made row holding the next number --------------------------
taken('acme-corp-302');
taken('acme-corp-303');
ok t_cmp(signup(), url('acme-corp-304'),
         'hand-made -302 and -303: the signup gets -304');
ok t_cmp(counter('acme-corp'), 304, 'the counter moved past them');
ok t_cmp(signup(), url('acme-corp-305'), 'the next one clashes no more');

# ---- 4. a name long enough to be cut, 260 times --------------------------
my $long = 'Northwestern Regional Widget Manufacturing and Distribution '
         . 'Cooperative Society';
(my $full = lc $long) =~ s/[^a-z0-9]+/-/g;
sub cut { my ($s, $len) = @_; $s = substr $s, 0, $len; $s =~ s/-+\z//; $s }
sub long_label {
    my ($i) = @_;
    return cut($full, 63) if $i == 1;
    return cut($full, 63 - length "-$i") . "-$i";
}
my $N = 260;
my (@got, @bad);
my $t0 = Time::HiRes::time();
my $t200;
for my $i (1 .. $N) {
    push @got, signup($long, "long$i\@example.com");
    $t200 = Time::HiRes::time() - $t0 if $i == 200;
    push @bad, "$i: $got[-1]" if $got[-1] ne url(long_label($i));
}
my $t_all = Time::HiRes::time() - $t0;
printf "# %d signups of one %d-character name: %.2f s (first 200: %.2f s)\n",
    $N, length $long, $t_all, $t200;
ok t_cmp(length($long) > 61 && length(cut($full, 63)) == 63 ? 1 : 0, 1,
         'the name is cut');
ok t_cmp(scalar(grep { /^HTTP/ } @got), 0, "$N signups of the long name: all 201");
ok t_cmp(join(' ', @bad[0 .. ($#bad < 4 ? $#bad : 4)]), '',
         'each got the label of its number, -201 to -260 too');
my %seen;
ok t_cmp(scalar(grep { !$seen{$_}++ } @got), $N, 'distinct site_urls');
ok t_cmp(scalar(grep { !/^https:\/\/[a-z0-9-]{1,63}\.acme\.example\.net\z/ } @got),
         0, 'every label at most 63 characters');

# the name's counter is keyed by its first 53 characters, which its cut
# labels keep: the back-fill finds all 260, and a name agreeing on those 53
# characters shares the counter (its labels cannot clash with these)
migrate_again();
ok t_cmp(counter(cut($full, 53)), $N, 'back-fill of cut labels: the long name at 260');
ok t_cmp(signup($long, 'long-again@example.com'), url(long_label($N + 1)),
         'after it the long name goes on at -261');
(my $twin = $long) =~ s/Distribution/Distributing/;
(my $twin_full = lc $twin) =~ s/[^a-z0-9]+/-/g;
ok t_cmp(join(' ', signup($twin, 'twin1@example.com'),
              signup($twin, 'twin2@example.com')),
         join(' ', url(cut($twin_full, 63)),
              url(cut($twin_full, 63 - length '-262') . '-262')),
         'a name agreeing on 53 characters: its plain label, then -262 '
         . '(the shared counter)');

# ---- 5. a concealed answer's label is taken ------------------------------
ok t_cmp(signup('Hidden Co'), url('hidden-co'), 'a real Hidden Co: plain');
taken('someone-else', 'owner1@example.com');
taken('someone-else-2', 'owner2@example.com');
Apache::TestRequest::module('vhost_signup_conceal');
my $c1 = signup('Hidden Co', 'owner1@example.com');
Apache::TestRequest::module('default');
ok t_cmp(signup('Hidden Co'), url('hidden-co-3'),
         'the concealed answer took -2: the next real one gets -3');
Apache::TestRequest::module('vhost_signup_conceal');
my $c2 = signup('Hidden Co', 'owner2@example.com');
Apache::TestRequest::module('default');
ok t_cmp("$c1 $c2", url('hidden-co-2') . ' ' . url('hidden-co-4'),
         'the concealed answers: -2, then -4');
my ($in_customers) = $db->selectrow_array(
    "SELECT count(*) FROM customers WHERE site_url IN (?, ?)", undef,
    url('hidden-co-2'), url('hidden-co-4'));
ok t_cmp($in_customers, 0, 'the decoy labels are not in customers');

my ($dups) = $db->selectrow_array(
    "SELECT count(*) - count(DISTINCT site_url) FROM customers WHERE tenant_id = ?",
    undef, $tenant);
ok t_cmp($dups, 0, 'every site_url distinct');

# ---- 6. the statements --------------------------------------------------
# The module's SQL as src/httpd/db.c registers it under $name, with its
# "%s" placeholders numbered for DBD::Pg.
sub module_sql {
    my ($name) = @_;
    open my $fh, '<', 'src/httpd/db.c' or die "src/httpd/db.c: $!";
    my $c = do { local $/; <$fh> };
    $c =~ /\{\s*\Q$name\E\s*,((?:\s*"(?:[^"\\]|\\.)*")+)\s*\}/
        or die "no $name in src/httpd/db.c";
    my $sql = join '', $1 =~ /"((?:[^"\\]|\\.)*)"/g;
    my $i = 0;
    $sql =~ s/%s/'$' . ++$i/ge;
    return $sql;
}
# The plan with sequential scans priced out: what is checked is that the
# statement can be answered by index probes, whatever the statistics of the
# moment say (on a table of one page a scan is cheaper, and the reaper or
# autovacuum may just have analyzed it). A statement no index can serve
# still shows its Seq Scan.
sub plan_of {
    my ($sql, @args) = @_;
    $db->do("SET enable_seqscan = off");
    my $rows = $db->selectall_arrayref("EXPLAIN $sql", undef, @args);
    $db->do("RESET enable_seqscan");
    return join "\n", map { $_->[0] } @$rows;
}
my $bump = module_sql('HS_Q_LABEL_BUMP');
my $bump_plan = plan_of($bump, $tenant, 'acme-corp');
ok t_cmp(join(' ', $bump =~ /customers|decoys/ig,
              $bump_plan =~ /Seq Scan|Conflict Arbiter Indexes: \S+/g),
         'Conflict Arbiter Indexes: hydra_signup_labels_pkey',
         'the counter: its primary key, no customer or decoy row, no Seq Scan');
print "# $_\n" for split /\n/, $bump_plan;
my $probe_plan = plan_of(module_sql('HS_Q_SITE_TAKEN'), $tenant,
                         url('acme-corp'), $tenant, url('acme-corp'));
print "# $_\n" for split /\n/, $probe_plan;
# the planner picks an index-only or a plain (or bitmap) index scan as the
# visibility map and statistics stand; either is an index probe
ok t_cmp(join(' ', map { /Seq/ ? 'seq' : 'index' }
                   $probe_plan =~ /(Index Only Scan|Bitmap Index Scan|Index Scan|Seq Scan)/g),
         'index index', 'the label probe: one index scan per table, no Seq Scan');
