namespace Amalgam.Study;

/// <summary>Everything a study leaves in its output folder.</summary>
public static class StudyOutputs
{
    /// <summary>results.json (validated first), frontier.png, per_task.png and report.md, each written atomically.</summary>
    public static void Write(StudyResults results, string outDir)
    {
        Directory.CreateDirectory(outDir);
        StudyResultsFile.Save(results, Path.Combine(outDir, StudyResultsFile.FileName));
        StudyPlots.Write(results, outDir);
        ReportWriter.Write(results, outDir);
    }
}
