"""The catalog the pipeline runs with: calibrated thresholds, never below the floor, never suspense."""

from decimal import Decimal

from pipeline.classify import Classifier
from pipeline.domain.catalog import load_catalog
from pipeline.flow import AUTO_POST_THRESHOLD_FLOOR, calibrated_catalog

SUSPENSE = "HERA.FIN.GL.SUSPENSE.UNCLASSIFIED.v1"


def test_thresholds_come_from_calibration_with_a_floor() -> None:
    classifier = Classifier.load(warm=False)
    catalog = calibrated_catalog(classifier, load_catalog())
    for code, t in classifier.thresholds.items():
        spec = catalog.smart_codes.get(code)
        if spec is None or code == SUSPENSE:
            continue
        assert spec.auto_post_threshold >= Decimal(str(AUTO_POST_THRESHOLD_FLOOR))
        assert abs(spec.auto_post_threshold - Decimal(str(max(t, AUTO_POST_THRESHOLD_FLOOR)))) < Decimal("0.0001")
    assert catalog.smart_codes[SUSPENSE].auto_post_threshold is None
    assert catalog.auto_post_block(SUSPENSE, Decimal("1"), Decimal("1")) is not None
