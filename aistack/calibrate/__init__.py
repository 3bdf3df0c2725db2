"""Calibrate llama.cpp GPU memory on a real GPU: pack here, build and measure there."""
