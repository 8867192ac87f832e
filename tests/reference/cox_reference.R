# -----------------------------------------------------------------------------
# cox_reference.R -- R reference values for neutrostats' Cox regression code
# (neutrostats/cox.py): survival::coxph and survival::cox.zph.
#
# Run from the repository root:
#     Rscript tests/reference/cox_reference.R
#
# Reads   tests/reference/data/lung.csv, veteran.csv   (write_survival_data.R)
# Writes  tests/reference/data/cox_ties.csv    synthetic, heavy ties, 4 tiers
#         tests/reference/data/cox_entry.csv   synthetic, delayed entry
#         tests/reference/cox_reference.json   all reference numbers
#
# Every model is fitted on the data *read back from the CSV files*, so Python
# and R see identical input. Deterministic (fixed RNG kind and seeds).
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-jsonlite.
#
# Conventions
#   * factors use treatment contrasts; the tier factor is NOT ordered in R
#     (an ordered factor would get polynomial contrasts) but has its levels in
#     tier order, so the first level (normal) is the reference; other factors
#     have alphabetical levels (first = reference), as neutrostats does.
#   * complete cases on the variables of each model.
#   * conf_low/conf_high: summary(fit)$conf.int (Wald, exp scale, 95%).
#   * tests: summary(fit)$sctest (score), fit$wald.test (summary() rounds it), $logtest (LR).
#   * zph: cox.zph(fit, transform = ..., terms = TRUE)$table (chisq, df, p).
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/cox_reference.R"
OUT_JSON    <- "tests/reference/cox_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/cox_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
TIERS <- c("normal", "subnormal", "mild", "moderate_severe")

num <- function(x) {
  # jsonlite writes non-finite numbers as strings only if asked; do it here.
  x <- as.numeric(x)
  out <- as.list(x)
  for (i in seq_along(x)) {
    if (is.na(x[i]) && !is.nan(x[i])) out[[i]] <- "NA"
    else if (is.nan(x[i])) out[[i]] <- "NaN"
    else if (is.infinite(x[i])) out[[i]] <- if (x[i] > 0) "Inf" else "-Inf"
  }
  if (length(out) == 1) out[[1]] else out
}

# --- synthetic data ------------------------------------------------------------
# Heavy ties: times in whole months (max 36), so many events share a time.
set.seed(20240611)
n <- 2000
tier <- sample(TIERS, n, replace = TRUE, prob = c(0.55, 0.25, 0.15, 0.05))
age <- round(runif(n, 20, 90), 1)
sex <- sample(c("F", "M"), n, replace = TRUE)
lp <- log(c(1, 1.2, 1.5, 3))[match(tier, TIERS)] + 0.03 * (age - 60) + 0.3 * (sex == "M")
t_event <- rexp(n, 0.02 * exp(lp))
t_cens <- runif(n, 6, 48)
time <- pmin(ceiling(pmin(t_event, t_cens)), 36)
status <- as.integer(t_event <= t_cens & ceiling(t_event) <= 36)
write.csv(data.frame(time = time, status = status, tier = tier, age = age, sex = sex),
          file.path(DATA_DIR, "cox_ties.csv"), row.names = FALSE)

# Delayed entry: entry in whole months, event times in whole months, only
# persons still alive at entry are observed (left truncation); entry < time.
set.seed(20240612)
n <- 3000
tier <- sample(TIERS, n, replace = TRUE, prob = c(0.55, 0.25, 0.15, 0.05))
age <- round(runif(n, 20, 90), 1)
sex <- sample(c("F", "M"), n, replace = TRUE)
lp <- log(c(1, 1.3, 1.8, 3.5))[match(tier, TIERS)] + 0.03 * (age - 60) + 0.3 * (sex == "M")
t_event <- ceiling(rexp(n, 0.03 * exp(lp)))
entry <- floor(runif(n, 0, 24))
t_cens <- entry + ceiling(runif(n, 1, 36))
keep <- t_event > entry
time <- pmin(t_event, t_cens)
status <- as.integer(t_event <= t_cens)
d <- data.frame(entry = entry, time = time, status = status, tier = tier, age = age, sex = sex)[keep, ]
write.csv(d, file.path(DATA_DIR, "cox_entry.csv"), row.names = FALSE)

# --- read back ----------------------------------------------------------------
lung <- read.csv(file.path(DATA_DIR, "lung.csv"))
lung <- lung[complete.cases(lung[, c("time", "status", "age", "sex", "ph.ecog")]), ]
veteran <- read.csv(file.path(DATA_DIR, "veteran.csv"))
veteran$celltype <- factor(veteran$celltype)  # alphabetical levels
ties <- read.csv(file.path(DATA_DIR, "cox_ties.csv"))
ties$tier <- factor(ties$tier, levels = TIERS)
ties$sex <- factor(ties$sex)
dentry <- read.csv(file.path(DATA_DIR, "cox_entry.csv"))
dentry$tier <- factor(dentry$tier, levels = TIERS)
dentry$sex <- factor(dentry$sex)
# integer case weights for the low-level fitter
lung$w <- 1 + (seq_len(nrow(lung)) %% 3)

# --- one model ------------------------------------------------------------------
model <- function(id, formula, data, ties, csv, zph = c("km"), note = "", weights = NULL) {
  # do.call puts the data themselves into the call, which cox.zph re-evaluates
  # (a plain `data = data` would find utils::data there).
  args <- list(formula = formula, data = data, ties = ties)
  if (!is.null(weights)) args$weights <- data[[weights]]
  fit <- do.call("coxph", args)
  s <- summary(fit)
  cf <- s$coefficients
  ci <- s$conf.int
  terms <- list()
  for (nm in rownames(cf)) {
    terms[[nm]] <- list(
      estimate = num(cf[nm, "coef"]), hazard_ratio = num(cf[nm, "exp(coef)"]),
      std_error = num(cf[nm, "se(coef)"]), z = num(cf[nm, "z"]),
      p_value = num(cf[nm, "Pr(>|z|)"]),
      conf_low = num(ci[nm, "lower .95"]), conf_high = num(ci[nm, "upper .95"]))
  }
  v <- if (!is.null(fit$naive.var)) fit$naive.var else fit$var
  zphs <- list()
  for (tr in zph) {
    z <- cox.zph(fit, transform = tr, terms = TRUE)$table
    rows <- list()
    for (nm in rownames(z)) {
      rows[[nm]] <- list(statistic = num(z[nm, "chisq"]), df = as.integer(z[nm, "df"]),
                         p_value = num(z[nm, "p"]))
    }
    zphs[[tr]] <- rows
  }
  list(
    id = id, csv = csv, formula = paste(deparse(formula), collapse = " "), ties = ties,
    weights = if (is.null(weights)) NULL else weights, note = note,
    n = fit$n, nevent = fit$nevent, coef_names = rownames(cf),
    terms = terms, var = lapply(seq_len(nrow(v)), function(i) num(v[i, ])),
    loglik = num(fit$loglik), iterations = fit$iter,
    score_test = list(statistic = num(s$sctest[["test"]]), df = as.integer(s$sctest[["df"]]),
                      p_value = num(s$sctest[["pvalue"]])),
    # summary() rounds the Wald statistic (and its p-value) to 2 digits; fit$wald.test is the full value
    wald_test = list(statistic = num(fit$wald.test), df = as.integer(s$waldtest[["df"]]),
                     p_value = num(pchisq(fit$wald.test, s$waldtest[["df"]], lower.tail = FALSE)),
                     summary_rounded = num(s$waldtest[["test"]])),
    lr_test = list(statistic = num(s$logtest[["test"]]), df = as.integer(s$logtest[["df"]]),
                   p_value = num(s$logtest[["pvalue"]])),
    zph = zphs)
}

L <- "tests/reference/data/lung.csv"
V <- "tests/reference/data/veteran.csv"
T <- "tests/reference/data/cox_ties.csv"
E <- "tests/reference/data/cox_entry.csv"
models <- list(
  model("lung_efron", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L,
        zph = c("km", "identity", "rank")),
  model("lung_breslow", Surv(time, status) ~ age + sex + ph.ecog, lung, "breslow", L,
        zph = c("km", "identity")),
  model("lung_weights", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L, zph = character(0),
        weights = "w", note = "case weights w = 1 + (row %% 3) on the complete cases, in file order"),
  model("veteran", Surv(time, status) ~ trt + karno + celltype, veteran, "efron", V,
        zph = c("km", "identity")),
  model("ties_efron", Surv(time, status) ~ tier + age + sex, ties, "efron", T, zph = c("km", "identity", "rank")),
  model("ties_breslow", Surv(time, status) ~ tier + age + sex, ties, "breslow", T, zph = c("km", "identity")),
  model("entry_efron", Surv(entry, time, status) ~ tier + age + sex, dentry, "efron", E,
        zph = c("km", "identity")),
  model("entry_breslow", Surv(entry, time, status) ~ tier + age + sex, dentry, "breslow", E,
        zph = c("km")),
  model("veteran_strata", Surv(time, status) ~ trt + karno + strata(celltype), veteran, "efron", V,
        zph = c("km", "identity")),
  model("ties_strata", Surv(time, status) ~ tier + age + strata(sex), ties, "efron", T,
        zph = c("km", "identity")),
  model("entry_strata", Surv(entry, time, status) ~ tier + age + strata(sex), dentry, "efron", E,
        zph = c("km"))
)
names(models) <- vapply(models, function(m) m$id, "")

header <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "jsonlite"), function(p) as.character(packageVersion(p)), simplify = FALSE),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-jsonlite &&", REGEN_CMD),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed(20240611) ties, set.seed(20240612) entry",
  non_finite_encoding = "non-finite numbers are the strings \"Inf\", \"-Inf\", \"NaN\", \"NA\"",
  conventions = list(
    contrasts = "treatment; tier levels normal < subnormal < mild < moderate_severe (reference normal), other factors alphabetical",
    complete_cases = "lung: complete cases of time, status, age, sex, ph.ecog",
    terms = "per coefficient: estimate (log HR), hazard_ratio, std_error, z, p_value, conf_low/conf_high (95% Wald, HR scale) from summary(coxph)",
    var = "fit$var (model-based inverse information; fit$naive.var when weights make coxph report a robust var)",
    loglik = "fit$loglik: (initial at beta = 0, final)",
    tests = "score_test = summary()$sctest, wald_test = fit$wald.test with its chi-square p (summary()$waldtest rounds it to 2 digits: summary_rounded), lr_test = summary()$logtest",
    zph = "cox.zph(fit, transform = <key>, terms = TRUE)$table; GLOBAL last"
  )
)

write_json(list(header = header, models = models), OUT_JSON, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", OUT_JSON, "\n")
