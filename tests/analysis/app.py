print("analysis-test launch module")
