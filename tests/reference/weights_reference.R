# -----------------------------------------------------------------------------
# weights_reference.R -- R reference values for covariate reference levels and
# case weights in neutrostats.stats (cox.py, odds_ratios.py, firth.py,
# tableone.py): survival::coxph, glm(binomial), brglm2, survey.
#
# Run from the repository root:
#     Rscript tests/reference/weights_reference.R
#
# Writes  tests/reference/data/pbc.csv          survival::pbc as it is (418 rows)
#         tests/reference/weights_reference.json all reference numbers
#
# Every model is fitted on the data *read back from pbc.csv* (and lung.csv of
# write_survival_data.R), so Python and R see identical input. No random
# numbers: the weights are functions of the row id, written in `header$derived`
# and recomputed by the Python tests:
#     w       = 0.5 + (id %% 7) / 4       non-integer case weights (0.5 .. 2)
#     wi      = 1 + id %% 3               whole-number weights (1, 2, 3)
#     entry   = floor(time * (id %% 5) / 10)   delayed entry, < time
#     died    = status == 2               death (status 1, transplant, censored)
#     early   = died & time < 730         death within two years
# with id the pbc id (lung: the row number).
#
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-survey
# r-cran-brglm2 r-cran-jsonlite.
#
# Conventions
#   * sex is R's factor with levels c("m", "f") (as in survival::pbc), so R's
#     term is `sexf`; neutrostats names it `sex[f]` (reference m). relevel(sex,
#     "f") gives `sexm` (neutrostats: reference={"sex": "f"}).
#   * stage is a factor with levels 1..4 (the tier; reference 1); rows with a
#     missing stage are left out (na.omit), as neutrostats' complete cases.
#   * coxph: summary(fit)$coefficients. With non-integer weights coxph's
#     default is robust = TRUE: `std_error` is the robust SE (the "robust se"
#     column, which z and p use) and `naive_std_error` the model-based one.
#   * glm(binomial, weights = w): prior weights (R warns "non-integer
#     #successes"; the fit is the weighted likelihood all the same), polished
#     to full convergence as in or_reference.R (same model, exact SEs).
#   * Firth: glm(..., method = brglm2::brglmFit, type = "AS_mean") with the
#     same weights: estimates and Wald SEs. Profile penalised-likelihood
#     intervals and PLR p-values of the stage terms: logistf is not in Debian,
#     so or_reference.R's hand implementation of logistf's definitions is
#     repeated below with prior weights (its unweighted form was validated
#     against logistf; the weighted fit must reproduce brglm2's estimates).
#   * Table 1: survey::svydesign(ids = ~1, weights = ~w); per group a subset of
#     the design with the variable non-missing; svymean, svyvar (n / (n - 1)
#     with n the persons with a positive weight), svyquantile(qrule = "math",
#     survey's default), weighted level proportions = svymean of the level
#     indicators. SMDs as tableone::svyCreateTableOne computes them (Austin
#     2009, Stat Med 28:3083, eq. 1 with the survey means and variances;
#     categorical: Yang & Dalton 2012's Mahalanobis distance of the weighted
#     level proportions); tableone is not in Debian, so these few lines are
#     written out below.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(survey)
  library(brglm2)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/weights_reference.R"
OUT_JSON    <- "tests/reference/weights_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/weights_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)

write.csv(survival::pbc, file.path(DATA_DIR, "pbc.csv"), row.names = FALSE, na = "")
pbc <- read.csv(file.path(DATA_DIR, "pbc.csv"), na.strings = "")
pbc$sex <- factor(pbc$sex, levels = c("m", "f"))
pbc$stage <- factor(pbc$stage, levels = 1:4)
pbc$w <- 0.5 + (pbc$id %% 7) / 4
pbc$wi <- 1 + pbc$id %% 3
pbc$entry <- floor(pbc$time * (pbc$id %% 5) / 10)
pbc$died <- as.integer(pbc$status == 2)
pbc$early <- as.integer(pbc$status == 2 & pbc$time < 730)

lung <- read.csv(file.path(DATA_DIR, "lung.csv"))
lung$id <- seq_len(nrow(lung))
lung$w <- 0.5 + (lung$id %% 7) / 4
lung$sex <- factor(lung$sex, levels = c(1, 2))

num <- function(x) unname(as.numeric(x))

cox_case <- function(id, formula, data, weights = NULL, ties = "efron") {
  data$.w <- if (is.null(weights)) 1 else data[[weights]]
  fit <- if (is.null(weights)) coxph(formula, data = data, ties = ties)
         else coxph(formula, data = data, ties = ties, weights = .w)
  co <- summary(fit)$coefficients
  robust <- "robust se" %in% colnames(co)
  list(id = id, formula = paste(deparse(formula), collapse = ""), ties = ties,
       weights = if (is.null(weights)) NA else weights, n = fit$n, n_event = fit$nevent,
       variance = if (robust) "robust" else "model",
       terms = as.list(rownames(co)), estimate = num(co[, "coef"]),
       std_error = num(if (robust) co[, "robust se"] else co[, "se(coef)"]),
       naive_std_error = num(co[, "se(coef)"]), p_value = num(co[, "Pr(>|z|)"]))
}

pbc_relevel <- pbc
pbc_relevel$sex <- relevel(pbc_relevel$sex, "f")
pbc_stage2 <- pbc
pbc_stage2$stage <- relevel(pbc_stage2$stage, "2")

## lung.csv (write_survival_data.R) has status 0 = censored, 1 = dead.
## coxph refuses a weight of 0 or NA (na.omit drops the NA row); the
## Python tests pass the same data with one weight 0 and one missing.
pbc_w <- pbc[!(pbc$id %in% c(3, 4)), ]

cox <- list(
  cox_case("pbc_sex", Surv(time, died) ~ age + sex + bili, pbc),
  cox_case("pbc_sex_relevel", Surv(time, died) ~ age + sex + bili, pbc_relevel),
  cox_case("pbc_stage_sex", Surv(time, died) ~ stage + age + sex, pbc),
  cox_case("pbc_stage2_sex_relevel", Surv(time, died) ~ stage + age + sex,
           within(pbc_stage2, sex <- relevel(sex, "f"))),
  cox_case("pbc_weighted", Surv(time, died) ~ age + sex + bili, pbc_w, "w"),
  cox_case("pbc_weighted_int", Surv(time, died) ~ age + sex + bili, pbc, "wi"),
  cox_case("pbc_weighted_stage_entry", Surv(entry, time, died) ~ stage + age + sex, pbc, "w"),
  cox_case("pbc_weighted_breslow", Surv(time, died) ~ stage + age + sex, pbc, "w", ties = "breslow"),
  cox_case("lung_weighted_strata", Surv(time, status) ~ age + ph.ecog + strata(sex), lung, "w")
)

glm_case <- function(id, formula, data, weights) {
  d <- data
  d$.w <- d[[weights]]
  # glm's default stopping rule leaves the SEs ~1e-5 from the exact MLE (summary() uses the IRLS
  # weights of the iteration before the last update); polished as in or_reference.R's fit_glm.
  fit <- suppressWarnings(glm(formula, family = binomial, data = d, weights = .w))
  for (pass in 1:2)
    fit <- suppressWarnings(glm(formula, family = binomial, data = d, weights = .w, start = coef(fit),
                                control = glm.control(epsilon = 1e-10, maxit = 50)))
  stopifnot(fit$converged)
  co <- summary(fit)$coefficients
  br <- suppressWarnings(glm(formula, family = binomial, data = d, weights = .w,
                             method = brglm2::brglmFit, type = "AS_mean",
                             control = brglm2::brglmControl(epsilon = 1e-12, maxit = 1000)))
  bs <- summary(br)$coefficients
  X <- model.matrix(fit)
  stage_terms <- grep("^stage", colnames(X), value = TRUE)
  hp <- firth_profile_w(X, fit$y, fit$prior.weights, stage_terms)
  if (max(abs(hp$beta - coef(br))) > 1e-6) stop("weighted Firth hand fit disagrees with brglm2 in ", id)
  list(id = id, formula = paste(deparse(formula), collapse = ""), weights = weights,
       n = nrow(model.frame(fit)), terms = as.list(rownames(co)),
       logistic = list(estimate = num(co[, "Estimate"]), std_error = num(co[, "Std. Error"]),
                       p_value = num(co[, "Pr(>|z|)"])),
       firth = list(estimate = num(bs[, "Estimate"]), std_error = num(bs[, "Std. Error"]),
                    profile_terms = as.list(stage_terms),
                    conf_low = num(sapply(hp$terms, `[[`, "conf_low")),
                    conf_high = num(sapply(hp$terms, `[[`, "conf_high")),
                    p_value = num(sapply(hp$terms, `[[`, "p_value"))))
}

## Firth profile penalised-likelihood intervals and PLR p-values with weights (logistf's
## definitions, as or_reference.R's firth_fit/firth_profile, with prior weights w):
##   l*(b) = sum_i w_i l_i(b) + 0.5 log det X' diag(w p (1 - p)) X,
##   CI = { b_j : 2 [l*(b_hat) - max_{b_j fixed} l*] <= qchisq(level, 1) },
##   p  = P(chi2_1 > 2 [l*(b_hat) - max_{b_j = 0} l*]).
## The unconstrained fit must reproduce brglm2's weighted estimates (checked in glm_case).
pen_loglik_w <- function(beta, X, y, wt) {
  eta <- drop(X %*% beta)
  p <- plogis(eta)
  ll <- sum(wt * (y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE)))
  ll + 0.5 * as.numeric(determinant(crossprod(X, X * (wt * p * (1 - p))), logarithm = TRUE)$modulus)
}
firth_fit_w <- function(X, y, wt, fixed = NULL, start = NULL) {
  k <- ncol(X)
  beta <- if (is.null(start)) rep(0, k) else start
  free <- seq_len(k)
  if (!is.null(fixed)) {
    beta[fixed$j] <- fixed$value
    free <- setdiff(free, fixed$j)
  }
  ll <- pen_loglik_w(beta, X, y, wt)
  for (it in 1:500) {
    p <- plogis(drop(X %*% beta)); v <- wt * p * (1 - p)
    info <- crossprod(X, X * v)
    h <- rowSums((X %*% solve(info)) * X) * v
    score <- drop(crossprod(X, wt * (y - p) + h * (0.5 - p)))
    delta <- rep(0, k)
    delta[free] <- solve(info[free, free, drop = FALSE], score[free])
    step <- 1
    repeat {
      nb <- beta + step * delta
      nll <- pen_loglik_w(nb, X, y, wt)
      if (nll >= ll - 1e-12 || step < 1e-8) break
      step <- step / 2
    }
    beta <- nb; ll <- nll
    if (max(abs(step * delta)) < 1e-11 && max(abs(score[free])) < 1e-8) break
  }
  list(beta = setNames(beta, colnames(X)), loglik = ll)
}
firth_profile_w <- function(X, y, wt, terms, level = 0.95) {
  full <- firth_fit_w(X, y, wt)
  crit <- qchisq(level, 1)
  p <- plogis(drop(X %*% full$beta))
  se <- sqrt(diag(solve(crossprod(X, X * (wt * p * (1 - p))))))
  res <- lapply(match(terms, colnames(X)), function(j) {
    prof <- function(b) 2 * (full$loglik - firth_fit_w(X, y, wt, list(j = j, value = b), full$beta)$loglik)
    g <- function(b) prof(b) - crit
    bound <- function(dir) {
      inner <- full$beta[j]; outer <- inner + dir * se[j]
      while (g(outer) < 0) { inner <- outer; outer <- outer + dir * 2 * se[j] }
      uniroot(g, sort(c(inner, outer)), tol = 1e-10, maxiter = 1000)$root
    }
    list(conf_low = bound(-1), conf_high = bound(1), p_value = pchisq(prof(0), 1, lower.tail = FALSE))
  })
  list(beta = full$beta, terms = setNames(res, terms))
}

logistic <- list(
  glm_case("pbc_adjusted", died ~ stage + age + sex, pbc, "w"),
  glm_case("pbc_crude", died ~ stage, pbc, "w"),
  glm_case("pbc_adjusted_int", died ~ stage + age + sex, pbc, "wi"),
  glm_case("pbc_early_adjusted", early ~ stage + age + sex, pbc, "w")
)

## --- weighted Table 1 --------------------------------------------------------
t1 <- pbc[!is.na(pbc$stage), ]
t1$edema <- factor(t1$edema, levels = c(0, 0.5, 1))
des <- svydesign(ids = ~1, weights = ~w, data = t1)
groups <- c(levels(t1$stage), "Overall")
continuous <- c("age", "chol", "bili")
categorical <- c("sex", "edema")
sub <- function(g, v) {
  keep <- !is.na(t1[[v]]) & (if (g == "Overall") TRUE else t1$stage == g)
  subset(des, keep)
}
summ <- list()
rows <- list()
for (g in groups) {
  for (v in continuous) {
    s <- sub(g, v)
    f <- as.formula(paste0("~", v))
    m <- num(coef(svymean(f, s)))
    va <- num(coef(svyvar(f, s)))
    q <- num(coef(svyquantile(f, s, quantiles = c(0.5, 0.25, 0.75), ci = FALSE)))
    summ[[paste(g, v)]] <- list(mean = m, var = va)
    rows[[length(rows) + 1]] <- list(variable = v, group = g, level = NA, mean = m, sd = sqrt(va),
                                     median = q[1], q1 = q[2], q3 = q[3], percent = NA,
                                     weighted_n = sum(weights(s)))
  }
  for (v in categorical) {
    s <- sub(g, v)
    f <- as.formula(paste0("~", v))
    p <- num(coef(svymean(f, s)))
    summ[[paste(g, v)]] <- list(props = p)
    levs <- levels(t1[[v]])
    for (k in seq_along(levs)) {
      rows[[length(rows) + 1]] <- list(variable = v, group = g, level = levs[k], mean = NA, sd = NA,
                                       median = NA, q1 = NA, q3 = NA, percent = 100 * p[k],
                                       weighted_n = p[k] * sum(weights(s)))
    }
  }
}
smd_cont <- function(a, b) (a$mean - b$mean) / sqrt((a$var + b$var) / 2)
smd_cat <- function(a, b) {
  p <- a$props[-1]; q <- b$props[-1]
  S <- ((diag(p, length(p)) - outer(p, p)) + (diag(q, length(q)) - outer(q, q))) / 2
  d <- p - q
  # MASS::ginv, as tableone: a level absent from both groups makes S singular
  sqrt(max(as.numeric(t(d) %*% MASS::ginv(S) %*% d), 0))
}
smd <- list()
tiers <- levels(t1$stage)
for (v in c(continuous, categorical)) {
  f <- if (v %in% continuous) smd_cont else smd_cat
  for (g in tiers) {
    smd[[length(smd) + 1]] <- list(variable = v, comparison = "vs_reference", group = g, reference = tiers[1],
                                   smd = f(summ[[paste(g, v)]], summ[[paste(tiers[1], v)]]))
  }
  pairs <- c()
  for (i in seq_along(tiers)) for (j in seq_along(tiers)) if (i < j)
    pairs <- c(pairs, abs(f(summ[[paste(tiers[i], v)]], summ[[paste(tiers[j], v)]])))
  smd[[length(smd) + 1]] <- list(variable = v, comparison = "pairwise_mean", group = NA, reference = NA,
                                 smd = mean(pairs))
}
table_one <- list(data = "pbc.csv, rows with stage", by = "stage", weights = "w",
                  continuous = as.list(continuous), categorical = as.list(categorical),
                  rows = rows, smd = smd)

header <- list(
  R = R.version.string,
  packages = sapply(c("survival", "survey", "brglm2", "MASS", "jsonlite"),
                    function(p) as.character(packageVersion(p)), simplify = FALSE),
  script = SCRIPT_PATH, regenerate = REGEN_CMD,
  data = list(pbc = "tests/reference/data/pbc.csv (survival::pbc)",
              lung = "tests/reference/data/lung.csv (write_survival_data.R)"),
  derived = list(w = "0.5 + (id %% 7) / 4", wi = "1 + id %% 3", entry = "floor(time * (id %% 5) / 10)",
                 died = "status == 2", early = "status == 2 & time < 730", lung_id = "row number"),
  notes = list(
    "pbc_weighted drops ids 3 and 4 (coxph refuses weight 0; the Python test gives id 3 weight 0 and id 4 a missing weight)",
    "coxph's default variance with non-integer weights is robust (std_error); naive_std_error is the model-based SE",
    "Firth with weights: estimates/SEs from brglm2; profile CIs and PLR p-values from a hand implementation of logistf's definitions with weights (logistf is not in Debian)")
)
write_json(list(header = header, cox = cox, logistic = logistic, table_one = table_one), OUT_JSON,
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
cat("wrote", OUT_JSON, "\n")
