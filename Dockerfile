# modelplane's image: one image for every process modelplane runs on a cluster. Its entry point is
# `modelplane`, so a container's arguments choose the command: `serve` (the model server of the built-in
# runtimes), `router` (InferenceGraphs), `storage fetch` (the storage initializer) and `operator`.
#
# Two variants, built from this file (docs/kubernetes.md):
#   slim, the default: sklearn, xgboost, lightgbm and onnx models, custom Python models, the router and
#   every storage backend; no GPU libraries.
#     docker build -t ghcr.io/modelplane/modelplane:0.1.0 .
#   full: also PyTorch (TorchScript, torch.export, TorchServe model stores), TensorFlow and PaddlePaddle,
#   CPU builds, MLflow models, transformers models and PMML models (with a Java runtime).
#     docker build --build-arg EXTRAS=all \
#       --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
#       -t ghcr.io/modelplane/modelplane-full:0.1.0 .
#
# tests/kube/test_image.py runs the build stage's steps in a fresh virtual environment and starts each
# entry point. Keep its RUN steps free of literal absolute paths (use the variables), so it can.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV VIRTUAL_ENV=/opt/modelplane PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv "$VIRTUAL_ENV"
ENV PATH=$VIRTUAL_ENV/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY modelplane ./modelplane
ARG EXTRAS=sklearn,xgboost,lightgbm,onnx,pandas,storage,kube
ARG PIP_EXTRA_INDEX_URL
RUN pip install "./[${EXTRAS}]"
# TF Serving's gRPC messages where TensorFlow is installed, of its release: on their own, as their package
# asks for the `tensorflow` distribution, which tensorflow-cpu does not stand for (pyproject.toml).
RUN if pip show -q tensorflow-cpu 2>/dev/null; then \
      pip install --no-deps "tensorflow-serving-api==$(pip show tensorflow-cpu | sed -n 's/^Version: \([0-9]*\.[0-9]*\).*/\1/p').*"; \
    fi

FROM python:${PYTHON_VERSION}-slim
# LightGBM (and XGBoost) load the GNU OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/modelplane /opt/modelplane
# PMML models are evaluated by jpmml-evaluator in a Java VM: an image that holds it (the full variant)
# carries a JRE. (The slim base has no man pages folder, which the JRE's packages write a link into.)
RUN if ls -d /opt/modelplane/lib/python*/site-packages/jpmml_evaluator >/dev/null 2>&1; then \
      mkdir -p /usr/share/man/man1 \
      && apt-get update \
      && apt-get install -y --no-install-recommends default-jre-headless \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV PATH=/opt/modelplane/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
# A numeric user, so that Kubernetes can check `runAsNonRoot` (the runtimes ask for it).
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["modelplane"]
CMD ["--help"]
