"""`aistack load`: the field report's load ladder against the cluster's own entry points.

traffic    what each request type sends, derived from the model (aliases, routes, image bounds)
attribution  which layer a failure came from, decided from the evidence the answer carries
counters   the servers' own counters (llama.cpp, SGLang, vLLM, LiteLLM) around each step
ladder     the steps on Locust's library API: bursts or sessions, capped, Ctrl-C safe
report     raw results, summary, plots and one HTML page; the measured curves kept as evidence
"""
