"""A custom explainer: which features of an instance move the predictor's answer.

For each instance of `:explain`, every feature is nudged 10% up and 10% down and the predictor is asked
again, all in one request; a feature whose nudge changes the predicted class matters for that
instance. The explainer reaches the predictor with the default `predict`, through the
`--predictor_host` modelplane gives it (as KServe gives a custom explainer).
"""

from modelplane.protocol.errors import InvalidInput
from modelplane.server import Model

NUDGE = 0.1


class Sensitivity(Model):
    def load(self) -> bool:
        self.ready = True
        return self.ready

    async def explain(self, payload, headers=None):
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list) or not instances:
            raise InvalidInput('explain takes {"instances": [[feature, ...], ...]}')
        nudged = [
            [value * (1 + sign * NUDGE) if index == feature else value for index, value in enumerate(row)]
            for row in instances
            for feature in range(len(row))
            for sign in (1, -1)
        ]
        answer = await self.predict({"instances": instances + nudged}, headers)
        predictions = answer["predictions"]
        found, offset = [], len(instances)
        for row, prediction in zip(instances, predictions, strict=False):
            changes = predictions[offset : offset + 2 * len(row)]
            offset += 2 * len(row)
            sensitive = sorted({index // 2 for index, changed in enumerate(changes) if changed != prediction})
            found.append({"prediction": prediction, "sensitive_features": sensitive})
        return {"explanations": found}
