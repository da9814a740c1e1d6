namespace Amalgam.Study;

/// <summary>Everything a study leaves in its output folder.</summary>
public static class StudyOutputs
{
    /// <summary>
    /// results.json (validated first), frontier.png, per_task.png, report.md and report.html, swapped in as one folder: a reader
    /// never sees new results beside an old report.
    /// </summary>
    public static void Write(StudyResults results, string outDir) =>
        Tensors.AtomicDirectory.Write(outDir, staging =>
        {
            StudyResultsFile.Save(results, Path.Combine(staging, StudyResultsFile.FileName));
            StudyPlots.Write(results, staging);
            ReportWriter.Write(results, staging);
            HtmlReport.Write(results, staging);
        });
}
