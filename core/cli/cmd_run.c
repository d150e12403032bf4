/* cmd_run.c — `melforge run EXPERIMENT.lua [--set key=value ...] [--resume] [--out DIR]`:
 * runs a Lua experiment script (melforge/experiment.h) and shows it Keras-style: engine
 * notes, a progress bar per epoch on a terminal (a line per epoch otherwise), the results
 * table of every run at the end.
 *
 * Ctrl-C: the first one raises the engine's interrupt flag (the step finishes, last.h5 is
 * written) and the command exits 130 after saying how to resume; a second one exits at
 * once.
 *
 * Test hook: MELFORGE_TEST_INTERRUPT_AFTER_STEPS=N raises the interrupt flag after the N-th
 * training step of the command, exactly as a first Ctrl-C at that moment would, so tests
 * can interrupt at a known point and check that --resume ends bit-identical.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "melforge/component.h"
#include "melforge/experiment.h"
#include "progress.h"

#define EXIT_INTERRUPTED 130

static void usage(FILE *f) {
  fprintf(f,
          "usage: melforge run EXPERIMENT.lua [--set key=value ...] [--resume] [--out DIR]\n"
          "\n"
          "runs the experiment the script returns, or the runs it starts with mf.run; each run\n"
          "writes its folder DIR/<experiment>/<seed>/ (metrics.csv, summary.json, config.json,\n"
          "best.h5, last.h5, test_predictions.csv, report.html, curves.png, confusion.png)\n"
          "\n"
          "  --set key=value  override a setting of every run, after the script's own:\n"
          "                   epochs=5, seed=3, optimizer.lr=1e-4, model.dropout=0.3,\n"
          "                   data.cache=x.h5, split.group=none, early_stopping.patience=3\n"
          "  --resume         continue each run from its last.h5; finished runs (summary.json)\n"
          "                   are skipped, runs without last.h5 start afresh\n"
          "  --out DIR        the runs folder (default: the experiment's `out`, else runs)\n"
          "\n"
          "Ctrl-C stops after the current step and saves last.h5 (exit 130); run again with\n"
          "--resume to continue. A second Ctrl-C quits at once.\n");
}

/* ---- interruption ------------------------------------------------------------------------- */

static volatile int g_interrupt;
static volatile sig_atomic_t g_sigints;

static void on_sigint(int sig) {
  (void)sig;
  if (g_sigints++) {
    static const char m[] = "\nmelforge run: interrupted again: quitting now\n";
    ssize_t w = write(STDERR_FILENO, m, sizeof m - 1);
    (void)w;
    _exit(EXIT_INTERRUPTED);
  }
  g_interrupt = 1;
  static const char m[] =
      "\nmelforge run: interrupting: finishing the current step and saving last.h5 (Ctrl-C "
      "again quits at once)\n";
  ssize_t w = write(STDERR_FILENO, m, sizeof m - 1);
  (void)w;
}

/* ---- display ------------------------------------------------------------------------------ */

typedef struct run_ui {
  int tty;
  cli_progress bar;
  char bar_label[64];
  int bar_epoch; /* the epoch the bar shows; 0: no bar on screen */
  int epochs;    /* of the current run */
  double loss_sum;
  int loss_n;
  long long steps;           /* training steps so far, every run */
  long long interrupt_after; /* the test hook; 0: off */
} run_ui;

static void clear_bar(run_ui *ui) {
  if (ui->tty && ui->bar_epoch) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  ui->bar_epoch = 0;
}

static void on_message(const char *text, void *user) {
  clear_bar(user);
  printf("%s\n", text);
  fflush(stdout);
}

static void on_step(int epoch, int step, int steps, double loss, void *user) {
  run_ui *ui = user;
  if (ui->interrupt_after > 0 && ++ui->steps == ui->interrupt_after) g_interrupt = 1;
  if (!ui->tty) return;
  if (ui->bar_epoch != epoch) {
    snprintf(ui->bar_label, sizeof ui->bar_label, "epoch %d/%d", epoch, ui->epochs);
    cli_progress_start(&ui->bar, ui->bar_label, "steps", steps);
    ui->bar_epoch = epoch;
    ui->loss_sum = 0;
    ui->loss_n = 0;
  }
  ui->loss_sum += loss;
  ui->loss_n++;
  char extra[48];
  snprintf(extra, sizeof extra, "loss %.4f", ui->loss_sum / ui->loss_n);
  cli_progress_update(&ui->bar, step, extra);
}

static void on_epoch(const mf_epoch_log *l, void *user) {
  run_ui *ui = user;
  clear_bar(ui);
  int w = snprintf(NULL, 0, "%d", l->epochs);
  printf("epoch %*d/%d  %5.1fs  loss %.4f  acc %.4f", w, l->epoch, l->epochs, l->seconds,
         l->train_loss, l->train_accuracy);
  if (!isnan(l->val_loss)) printf("  val_loss %.4f", l->val_loss);
  if (!isnan(l->val_accuracy)) printf("  val_acc %.4f", l->val_accuracy);
  if (!isnan(l->val_track_accuracy)) printf("  val_track_acc %.4f", l->val_track_accuracy);
  printf("  lr %.4g%s\n", l->lr, l->improved ? " *" : "");
  fflush(stdout);
}

static void on_run_begin(const mf_lua_run *run, void *user) {
  run_ui *ui = user;
  clear_bar(ui);
  ui->epochs = run->epochs;
  printf("\n%s  seed %llu  model %s  ->  %s%s\n", run->experiment, (unsigned long long)run->seed,
         run->model, run->run_dir,
         run->skipped   ? "  (finished before: skipped)"
         : run->resumed ? "  (resuming from last.h5)"
                        : "");
  fflush(stdout);
}

/* 1234567 -> "1,234,567" */
static void thousands(int64_t v, char *buf, size_t n) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)v);
  size_t len = strlen(digits), k = 0;
  for (size_t i = 0; i < len && k + 2 < n; i++) {
    if (i && (len - i) % 3 == 0 && digits[i - 1] != '-') buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = '\0';
}

static void duration(double s, char *buf, size_t n) {
  if (!(s >= 0))
    snprintf(buf, n, "-");
  else if (s < 60)
    snprintf(buf, n, "%.1fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void metric(double v, char *buf, size_t n) {
  if (isnan(v))
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%.4f", v);
}

static void print_results(const mf_lua_report *rep) {
  int we = (int)strlen("experiment"), wm = (int)strlen("model");
  for (int i = 0; i < rep->n_runs; i++) {
    int a = (int)strlen(rep->runs[i].experiment), b = (int)strlen(rep->runs[i].model);
    if (a > we) we = a;
    if (b > wm) wm = b;
  }
  printf("\nresults\n  %-*s  %-*s  %6s  %11s  %8s  %9s  %8s  %10s  %10s\n", we, "experiment", wm,
         "model", "seed", "params", "test acc", "track acc", "macro F1", "best epoch",
         "train time");
  for (int i = 0; i < rep->n_runs; i++) {
    const mf_lua_run *r = &rep->runs[i];
    const int done = r->status == MF_OK;
    char params[32] = "-", acc[16], tacc[16], f1[16], best[16] = "-", t[16];
    if (r->params_count >= 0) thousands(r->params_count, params, sizeof params);
    metric(done ? r->result.test_accuracy : NAN, acc, sizeof acc);
    metric(done ? r->result.test_track_accuracy : NAN, tacc, sizeof tacc);
    metric(done ? r->result.test_macro_f1 : NAN, f1, sizeof f1);
    if (done && r->result.best_epoch > 0) snprintf(best, sizeof best, "%d", r->result.best_epoch);
    duration(done ? r->result.train_seconds : NAN, t, sizeof t);
    const char *status = r->status == MF_EINTERRUPT ? "  interrupted"
                         : !done                    ? "  failed"
                         : r->skipped               ? "  (earlier run)"
                                                    : "";
    printf("  %-*s  %-*s  %6llu  %11s  %8s  %9s  %8s  %10s  %10s%s\n", we, r->experiment, wm,
           r->model, (unsigned long long)r->seed, params, acc, tacc, f1, best, t, status);
  }
  printf("\nrun folders:\n");
  for (int i = 0; i < rep->n_runs; i++) printf("  %s\n", rep->runs[i].run_dir);
  fflush(stdout);
}

/* The argument as a shell would need it to be typed. */
static void print_arg(const char *a) {
  int plain = *a != '\0';
  for (const char *p = a; *p; p++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%", *p))
      plain = 0;
  if (plain) {
    fprintf(stderr, " %s", a);
    return;
  }
  fputs(" '", stderr);
  for (const char *p = a; *p; p++)
    if (*p == '\'')
      fputs("'\\''", stderr);
    else
      fputc(*p, stderr);
  fputc('\'', stderr);
}

/* ---- the command --------------------------------------------------------------------------- */

int cmd_run(int argc, char **argv) {
  cli_common common;
  int rc = cli_common_options(&argc, argv, &common);
  if (rc) return rc;
  const char *script = NULL, *out = NULL;
  int resume = 0;
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_set = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(sets);
      return MF_EXIT_OK;
    }
    if (!strcmp(a, "--resume")) {
      resume = 1;
    } else if (!strncmp(a, "--set", 5) && (a[5] == '\0' || a[5] == '=')) {
      const char *v = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
      if (!v) {
        cli_error("run", "--set needs key=value (e.g. --set epochs=5)");
        free(sets);
        return MF_EXIT_USAGE;
      }
      sets[n_set++] = v;
    } else if (!strncmp(a, "--out", 5) && (a[5] == '\0' || a[5] == '=')) {
      out = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
      if (!out || !*out) {
        cli_error("run", "--out needs a folder (e.g. --out runs)");
        free(sets);
        return MF_EXIT_USAGE;
      }
    } else if (a[0] == '-' && a[1]) {
      static const char *const opts[] = {"--set",  "--resume",  "--out",
                                         "--help", "--threads", "--plugin-path"};
      const char *hint = mf_closest_name(a, opts, 6);
      cli_error("run", "unknown option '%s'%s%s%s; 'melforge run --help' lists the options", a,
                hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
      free(sets);
      return MF_EXIT_USAGE;
    } else if (script) {
      cli_error("run", "one experiment script at a time (got '%s' and '%s')", script, a);
      free(sets);
      return MF_EXIT_USAGE;
    } else {
      script = a;
    }
  }
  if (!script) {
    usage(stderr);
    free(sets);
    return MF_EXIT_USAGE;
  }
  if (access(script, R_OK) != 0) {
    cli_error("run", "cannot read the experiment script %s: %s (experiments/ holds examples)",
              script, strerror(errno));
    free(sets);
    return MF_EXIT_USAGE;
  }
  for (int i = 0; i < n_set; i++)
    if (mf_lua_check_override(sets[i]) != MF_OK) {
      cli_error("run", "%s", mf_error());
      free(sets);
      return MF_EXIT_USAGE;
    }
  cli_load_plugins(&common);

  run_ui ui = {0};
  ui.tty = isatty(fileno(stderr));
  const char *hook = getenv("MELFORGE_TEST_INTERRUPT_AFTER_STEPS");
  if (hook && *hook) ui.interrupt_after = atoll(hook);
  mf_train_hooks hooks = {on_message, on_step, on_epoch, &g_interrupt, &ui};
  mf_lua_options opt = {0};
  opt.set = sets;
  opt.n_set = n_set;
  opt.resume = resume;
  opt.runs_root = out;
  opt.hooks = &hooks;
  opt.run_begin = on_run_begin;
  opt.user = &ui;

  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old);

  mf_lua_report report = {0};
  mf_status s = mf_lua_run_file(script, &opt, &report);
  clear_bar(&ui);
  sigaction(SIGINT, &old, NULL);

  const int n_runs = report.n_runs;
  int failed_runs = 0;
  for (int i = 0; i < report.n_runs; i++) failed_runs += report.runs[i].status != MF_OK;
  if (report.n_runs) print_results(&report);
  mf_lua_report_clear(&report);

  if (s == MF_EINTERRUPT) {
    fflush(stdout);
    fprintf(stderr, "melforge run: %s\n", mf_error());
    if (!n_runs) {
      free(sets);
      return EXIT_INTERRUPTED;
    }
    fputs("continue with:\n  melforge run", stderr);
    print_arg(script);
    for (int i = 0; i < n_set; i++) {
      fputs(" --set", stderr);
      print_arg(sets[i]);
    }
    if (out) {
      fputs(" --out", stderr);
      print_arg(out);
    }
    /* The thread count is part of what makes a resumed run bit-identical. */
    if (common.threads) fprintf(stderr, " --threads %d", common.threads);
    if (common.plugin_path) {
      fputs(" --plugin-path", stderr);
      print_arg(common.plugin_path);
    }
    fputs(" --resume\n", stderr);
    free(sets);
    return EXIT_INTERRUPTED;
  }
  free(sets);
  if (s != MF_OK) {
    cli_error("run", "%s", mf_error());
    return MF_EXIT_FAIL;
  }
  if (failed_runs) {
    cli_error("run", "%d run%s failed (see above)", failed_runs, failed_runs > 1 ? "s" : "");
    return MF_EXIT_FAIL;
  }
  return MF_EXIT_OK;
}
