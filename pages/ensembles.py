"""Placeholder: this page is built in its own issue."""

import streamlit as st

st.title("ensembles")
st.info("This page is being built.")
