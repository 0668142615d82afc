"""Small PMML models, written out by hand: a decision tree for iris (a class, its probabilities and the
node it ends in, as KServe's example answers) and a regression over a number and a category."""

from __future__ import annotations

from pathlib import Path

IRIS_FIELDS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _node(node_id: str, score: str, predicate: str, counts: tuple[int, int, int], children: str = "") -> str:
    total = sum(counts)
    distribution = "".join(
        f'<ScoreDistribution value="{label}" recordCount="{count}" confidence="{count / total!r}"/>'
        for label, count in zip(("setosa", "versicolor", "virginica"), counts, strict=True)
    )
    return f'<Node id="{node_id}" score="{score}" recordCount="{total}">{predicate}{distribution}{children}</Node>'


def iris_tree() -> str:
    """setosa below petal_length 2.45; above it, versicolor below petal_width 1.65, else virginica."""
    fields = "".join(
        f'<DataField name="{name}" optype="continuous" dataType="double"/>' for name in IRIS_FIELDS
    )
    mining = "".join(f'<MiningField name="{name}"/>' for name in IRIS_FIELDS)
    probabilities = "".join(
        f'<OutputField name="Probability_{label}" optype="continuous" dataType="double" '
        f'feature="probability" value="{label}"/>'
        for label in ("setosa", "versicolor", "virginica")
    )
    tree = _node(
        "1",
        "setosa",
        "<True/>",
        (50, 50, 50),
        _node(
            "2",
            "setosa",
            '<SimplePredicate field="petal_length" operator="lessThan" value="2.45"/>',
            (50, 0, 0),
        )
        + _node(
            "3",
            "versicolor",
            '<SimplePredicate field="petal_length" operator="greaterOrEqual" value="2.45"/>',
            (0, 50, 50),
            _node(
                "4",
                "versicolor",
                '<SimplePredicate field="petal_width" operator="lessThan" value="1.65"/>',
                (0, 49, 5),
            )
            + _node(
                "5",
                "virginica",
                '<SimplePredicate field="petal_width" operator="greaterOrEqual" value="1.65"/>',
                (0, 1, 45),
            ),
        ),
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="iris decision tree"/>
  <DataDictionary>
    <DataField name="Species" optype="categorical" dataType="string">
      <Value value="setosa"/><Value value="versicolor"/><Value value="virginica"/>
    </DataField>
    {fields}
  </DataDictionary>
  <TreeModel functionName="classification" splitCharacteristic="binarySplit">
    <MiningSchema><MiningField name="Species" usageType="target"/>{mining}</MiningSchema>
    <Output>
      {probabilities}
      <OutputField name="Node_Id" optype="categorical" dataType="string" feature="entityId"/>
    </Output>
    {tree}
  </TreeModel>
</PMML>
"""


def price_regression() -> str:
    """price = 1.5 + 2 * size, plus 3 when colour is red, 1 when blue, 0 when green; an unknown colour is
    invalid (JPMML refuses it) and a missing size is refused as well."""
    return """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="price by size and colour"/>
  <DataDictionary>
    <DataField name="size" optype="continuous" dataType="double"/>
    <DataField name="colour" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/><Value value="green"/>
    </DataField>
    <DataField name="price" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="size" missingValueTreatment="returnInvalid"/>
      <MiningField name="colour" invalidValueTreatment="returnInvalid"/>
      <MiningField name="price" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1.5">
      <NumericPredictor name="size" coefficient="2"/>
      <CategoricalPredictor name="colour" value="red" coefficient="3"/>
      <CategoricalPredictor name="colour" value="blue" coefficient="1"/>
      <CategoricalPredictor name="colour" value="green" coefficient="0"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""


def write_model(folder: Path, text: str, name: str = "model.pmml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder
