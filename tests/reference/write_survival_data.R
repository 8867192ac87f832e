# Writes the public data sets of R's survival package used by the survival
# and Cox reference scripts, as CSV, so that Python reads exactly the data R
# fits. The survival package (and its data) is licensed LGPL (>= 2); see
# tests/reference/README.md for attribution.
#   Rscript tests/reference/write_survival_data.R   (from the repository root)
library(survival)
dir.create("tests/reference/data", showWarnings = FALSE)
# lung: NCCTG advanced lung cancer; status recoded to 0 = censored, 1 = dead.
l <- survival::lung
l$status <- as.integer(l$status == 2)
write.csv(l, "tests/reference/data/lung.csv", row.names = FALSE, na = "")
# veteran: VA lung cancer trial (Kalbfleisch & Prentice).
write.csv(survival::veteran, "tests/reference/data/veteran.csv", row.names = FALSE, na = "")
# mgus2: progression to plasma-cell malignancy (pstat) with death as a
# competing event (death); times in months.
write.csv(survival::mgus2, "tests/reference/data/mgus2.csv", row.names = FALSE, na = "")
