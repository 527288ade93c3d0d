"""Placeholder: this page is built in its own issue."""

import streamlit as st

st.title("mistakes")
st.info("This page is being built.")
