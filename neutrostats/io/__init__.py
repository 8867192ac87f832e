"""Files and exports: lab tables (CSV, Parquet), wide CBC exports, OMOP CDM, MIMIC-IV and FHIR readers."""

from __future__ import annotations

from neutrostats.io.files import (
    read_table,
    write_table,
    check_output_path,
    cbc_to_long,
    TEXT_COLUMNS,
    READ_SUFFIXES,
    WRITE_SUFFIXES,
    CBC_CODES,
)
from neutrostats.io.omop import (
    OmopData,
    read_omop,
    OMOP_MEASUREMENT_CONCEPTS,
    OMOP_UNIT_CONCEPTS,
    OMOP_OPERATOR_CONCEPTS,
    OMOP_GENDER_CONCEPTS,
)
from neutrostats.io.mimic import (
    MimicData,
    read_mimic_iv,
)
from neutrostats.io.fhir import (
    FhirData,
    read_fhir,
    FHIR_ICD10_SYSTEMS,
    FHIR_GENDERS,
)

__all__ = [
    "read_table",
    "write_table",
    "check_output_path",
    "cbc_to_long",
    "TEXT_COLUMNS",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "CBC_CODES",
    "OmopData",
    "read_omop",
    "OMOP_MEASUREMENT_CONCEPTS",
    "OMOP_UNIT_CONCEPTS",
    "OMOP_OPERATOR_CONCEPTS",
    "OMOP_GENDER_CONCEPTS",
    "MimicData",
    "read_mimic_iv",
    "FhirData",
    "read_fhir",
    "FHIR_ICD10_SYSTEMS",
    "FHIR_GENDERS",
]
