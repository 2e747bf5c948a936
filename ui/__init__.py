"""The Streamlit app for human judges and the study admin (`streamlit run ui/app.py`)."""
