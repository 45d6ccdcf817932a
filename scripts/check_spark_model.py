"""Loads a recflow model folder with PySpark's ALSModel.load and checks that Spark's predictions
equal recflow's (dot products of the stored factors). Prints a JSON line.
usage: check_spark_model.py MODEL_DIR"""
import glob
import json
import sys

import numpy as np
import pyarrow.parquet as pq
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import SparkSession

d = sys.argv[1]
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
model = ALSModel.load(d)


def factors(sub):
    t = pq.read_table(sorted(glob.glob(f"{d}/{sub}/*.parquet"))).to_pandas().sort_values("id")
    return np.vstack(t["features"].to_numpy()).astype(np.float64)


U, V = factors("userFactors"), factors("itemFactors")
rng = np.random.default_rng(0)
pairs = [(int(u), int(i)) for u, i in zip(rng.integers(0, len(U), 200), rng.integers(0, len(V), 200))]
df = spark.createDataFrame(pairs, ["user", "item"])
pred = model.transform(df).toPandas()
ours = np.array([U[u] @ V[i] for u, i in zip(pred.user, pred.item)])
diff = float(np.max(np.abs(ours - pred.prediction.to_numpy())))
recs = model.recommendForAllUsers(5).count()
print(json.dumps(dict(rank=model.rank, users=len(U), items=len(V), max_abs_diff=diff, users_with_recs=recs)))
